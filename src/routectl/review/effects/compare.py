"""Compare two compiled tables into a TableDiff: set algebra on keys, one comparator per kind of effect.

Each comparator takes the old and the new table and returns its group already sorted; `compare`
gathers the groups. A first deploy is a comparison against `empty_table()`.
"""

from __future__ import annotations

from typing import Any, Literal

from routectl.review.access import access_of, connection_chain, organization_access_of
from routectl.review.effects.types import (
    AccessChange,
    CapabilityChange,
    Change,
    CollectionChange,
    ConnectionChange,
    FirstChoiceChange,
    LimitChange,
    MemberShare,
    OtherChange,
    SettingChange,
    StrategyChange,
    TableDiff,
    TrafficChange,
)
from routectl.review.effects.warnings import new_warnings
from routectl.review.shares import expected_shares, member_key
from routectl.table import Collection, Defaults, Member, RoutingTable

__all__ = ["compare", "empty_table"]


def empty_table() -> RoutingTable:
    """The table of an empty configuration: the base of a first commit."""
    return RoutingTable(
        format=1,
        defaults=Defaults(),
        organizations={},
        users={},
        providers={},
        models={},
        connections={},
        model_connections={},
        collections={},
        aliases={},
        api_keys={},
    )


# ---------------------------------------------------------------- access


def _access_changes(old: RoutingTable, new: RoutingTable) -> list[AccessChange]:
    out: list[AccessChange] = []
    for org in sorted(old.organizations.keys() | new.organizations.keys()):
        before, after = organization_access_of(old, org), organization_access_of(new, org)
        old_members = set(old.organizations[org].members) if org in old.organizations else set()
        new_members = set(new.organizations[org].members) if org in new.organizations else set()
        change = AccessChange(
            "organization",
            org,
            gained=tuple(sorted(after.names() - before.names())),
            lost=tuple(sorted(before.names() - after.names())),
            joined=tuple(sorted(new_members - old_members)),
            left=tuple(sorted(old_members - new_members)),
        )
        if change.gained or change.lost or change.joined or change.left:
            out.append(change)
    for user in sorted(old.users.keys() | new.users.keys()):
        before, after = access_of(old, user), access_of(new, user)
        old_orgs = set(old.users[user].organizations) if user in old.users else set()
        new_orgs = set(new.users[user].organizations) if user in new.users else set()
        change = AccessChange(
            "user",
            user,
            gained=tuple(sorted(after.names() - before.names())),
            lost=tuple(sorted(before.names() - after.names())),
            joined=tuple(sorted(new_orgs - old_orgs)),
            left=tuple(sorted(old_orgs - new_orgs)),
        )
        if change.gained or change.lost or change.joined or change.left:
            out.append(change)
    # losses first: a caller who loses access is the effect a reviewer must not miss
    out.sort(key=lambda c: (not c.lost, c.kind != "organization", c.subject))
    return out


# ---------------------------------------------------------------- collections and traffic


def _collection_changes(old: RoutingTable, new: RoutingTable) -> list[CollectionChange]:
    out: list[CollectionChange] = []
    for name in sorted(old.collections.keys() ^ new.collections.keys()):
        added = name in new.collections
        c = new.collections[name] if added else old.collections[name]
        out.append(
            CollectionChange(
                name,
                "added" if added else "removed",
                c.scope,
                c.owner,
                c.strategy,
                tuple(member_key(c, m) for m in c.members),
            )
        )
    out.sort(key=lambda c: (c.change != "removed", c.name))
    return out


def _member_details(before: Member, after: Member) -> tuple[str, ...]:
    details: list[str] = []
    if before.active != after.active:
        details.append("activated" if after.active else "deactivated")
    if before.weight != after.weight:
        details.append(f"weight {before.weight:g} -> {after.weight:g}")
    if before.priority != after.priority:
        details.append(f"priority {before.priority} -> {after.priority}")
    if before.tags != after.tags:
        details.append(f"tags {list(before.tags)} -> {list(after.tags)}")
    return tuple(details)


def _traffic_change(
    old: RoutingTable, new: RoutingTable, before: Collection | None, after: Collection | None
) -> TrafficChange | None:
    shares_b, basis_b = expected_shares(old, before) if before else ({}, None)
    shares_a, basis_a = expected_shares(new, after) if after else ({}, None)
    members_b = {member_key(before, m): m for m in before.members} if before else {}
    members_a = {member_key(after, m): m for m in after.members} if after else {}
    # member order: the new table's walk order, then removed members in their old order
    keys = list(members_a) + [k for k in members_b if k not in members_a]
    rows: list[MemberShare] = []
    for key in keys:
        mb, ma = members_b.get(key), members_a.get(key)
        details = _member_details(mb, ma) if mb and ma else ()
        sb, sa = shares_b.get(key), shares_a.get(key)
        change: Change
        if mb is None:
            change = "added"
        elif ma is None:
            change = "removed"
        elif details or abs((sb or 0.0) - (sa or 0.0)) > 1e-9:
            change = "changed"
        else:
            change = "unchanged"
        rows.append(MemberShare(key, change, sb, sa, details))
    moved = any(r.change != "unchanged" for r in rows)
    strategy_b = before.strategy if before else None
    strategy_a = after.strategy if after else None
    if not moved and strategy_b == strategy_a:
        return None
    name = after.name if after else before.name if before else ""
    return TrafficChange(name, strategy_b, strategy_a, basis_b, basis_a, tuple(rows))


def _traffic_changes(old: RoutingTable, new: RoutingTable) -> list[TrafficChange]:
    out = []
    for name in sorted(old.collections.keys() | new.collections.keys()):
        change = _traffic_change(old, new, old.collections.get(name), new.collections.get(name))
        if change is not None:
            out.append(change)
    return out


def _strategy_changes(old: RoutingTable, new: RoutingTable) -> list[StrategyChange]:
    return [
        StrategyChange(n, old.collections[n].strategy, new.collections[n].strategy)
        for n in sorted(old.collections.keys() & new.collections.keys())
        if old.collections[n].strategy != new.collections[n].strategy
    ]


_SETTINGS = (
    "scope",
    "owner",
    "aliases",
    "fallback_on",
    "max_attempts",
    "timeout_ms",
    "metadata",
    "affinity",
)


def _setting_changes(old: RoutingTable, new: RoutingTable) -> list[SettingChange]:
    out = []
    for n in sorted(old.collections.keys() & new.collections.keys()):
        b, a = old.collections[n], new.collections[n]
        for setting in _SETTINGS:
            vb, va = getattr(b, setting), getattr(a, setting)
            if vb != va:
                vb = list(vb) if isinstance(vb, tuple) else vb
                va = list(va) if isinstance(va, tuple) else va
                out.append(SettingChange(n, setting, vb, va))
    return out


# ---------------------------------------------------------------- connections


def _connection_changes(old: RoutingTable, new: RoutingTable) -> list[ConnectionChange]:
    out = []
    for cid in sorted(old.connections.keys() | new.connections.keys()):
        b, a = old.connections.get(cid), new.connections.get(cid)
        if b is None and a is not None:
            out.append(ConnectionChange(cid, a.owner, "added", None, list(a.models)))
        elif a is None and b is not None:
            out.append(ConnectionChange(cid, b.owner, "removed", list(b.models), None))
        elif a is not None and b is not None:
            if a.priority != b.priority:
                out.append(ConnectionChange(cid, a.owner, "priority", b.priority, a.priority))
            if a.models != b.models:
                out.append(ConnectionChange(cid, a.owner, "models", list(b.models), list(a.models)))
    return out


def _first_choice_changes(old: RoutingTable, new: RoutingTable) -> list[FirstChoiceChange]:
    out = []
    models = sorted(old.model_connections.keys() | new.model_connections.keys())
    for user in sorted(old.users.keys() & new.users.keys()):
        for model in models:
            b = connection_chain(old, user, model)
            a = connection_chain(new, user, model)
            first_b, first_a = (b[0] if b else None), (a[0] if a else None)
            if first_b != first_a:
                out.append(FirstChoiceChange(user, model, first_b, first_a))
    return out


# ---------------------------------------------------------------- capabilities


def _capabilities(table: RoutingTable, c: Collection) -> set[str]:
    return {
        cap
        for m in c.members
        if m.active and m.model_id in table.models
        for cap in table.models[m.model_id].capabilities
    }


def _capability_changes(old: RoutingTable, new: RoutingTable) -> list[CapabilityChange]:
    out = []
    for n in sorted(old.collections.keys() & new.collections.keys()):
        b = _capabilities(old, old.collections[n])
        a = _capabilities(new, new.collections[n])
        if a != b:
            out.append(CapabilityChange(n, tuple(sorted(b - a)), tuple(sorted(a - b))))
    return out


# ---------------------------------------------------------------- models, defaults, keys, URLs

_MODEL_FIELDS = (
    "context_window",
    "max_output_tokens",
    "input_per_mtok",
    "output_per_mtok",
    "capabilities",
    "trust_level",
    "free",
)
_DEFAULT_FIELDS = (
    "cooldown_s",
    "allowed_fails",
    "timeout_ms",
    "max_attempts",
    "fallback_on",
    "priority_user",
    "priority_organization",
    "priority_platform",
    "max_cooldown_s",
)
_CONNECTION_FIELDS = ("base_url", "api_key_env", "upstream_names")


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _field_changes(
    subject: str, before: Any, after: Any, names: tuple[str, ...]
) -> list[OtherChange]:
    return [
        OtherChange(subject, name, _plain(getattr(before, name)), _plain(getattr(after, name)))
        for name in names
        if getattr(before, name) != getattr(after, name)
    ]


def _short_digest(digest: str) -> str:
    return digest[:19] + "…"  # "sha256:" and 12 hex digits: enough to tell keys apart


def _other_changes(old: RoutingTable, new: RoutingTable) -> list[OtherChange]:
    out = _field_changes("defaults", old.defaults, new.defaults, _DEFAULT_FIELDS)
    for model_id in sorted(old.models.keys() | new.models.keys()):
        b, a = old.models.get(model_id), new.models.get(model_id)
        if b is None or a is None:
            out.append(OtherChange(f"model {model_id}", "defined", b is not None, a is not None))
        else:
            out += _field_changes(f"model {model_id}", b, a, _MODEL_FIELDS)
    for name in sorted(old.providers.keys() & new.providers.keys()):
        out += _field_changes(
            f"provider {name}", old.providers[name], new.providers[name], ("api", "base_url")
        )
    for cid in sorted(old.connections.keys() & new.connections.keys()):
        out += _field_changes(
            f"connection {cid}", old.connections[cid], new.connections[cid], _CONNECTION_FIELDS
        )
    for handle in sorted(old.users.keys() & new.users.keys()):
        kb, ka = old.users[handle].api_keys, new.users[handle].api_keys
        if set(kb) != set(ka):
            out.append(
                OtherChange(
                    f"user {handle}",
                    "api_keys",
                    [_short_digest(k) for k in sorted(kb)],
                    [_short_digest(k) for k in sorted(ka)],
                )
            )
    return out


# ---------------------------------------------------------------- limits

_LIMIT_KINDS: tuple[tuple[str, Literal["user", "organization", "collection"]], ...] = (
    ("users", "user"),
    ("organizations", "organization"),
    ("collections", "collection"),
)
_LIMIT_FIELDS = ("requests_per_minute", "tokens_per_minute", "usd_per_day", "usd_per_month")


def _limit_changes(old: RoutingTable, new: RoutingTable) -> list[LimitChange]:
    out: list[LimitChange] = []
    for group, kind in _LIMIT_KINDS:
        before, after = getattr(old.limits, group), getattr(new.limits, group)
        for subject in sorted(before.keys() | after.keys()):
            b, a = before.get(subject), after.get(subject)
            for name in _LIMIT_FIELDS:
                vb = getattr(b, name) if b is not None else None
                va = getattr(a, name) if a is not None else None
                if vb != va:
                    out.append(LimitChange(kind, subject, name, vb, va))
            if b is not None and a is not None and b.fail != a.fail:
                out.append(LimitChange(kind, subject, "fail", b.fail, a.fail))
    return out


def compare(old: RoutingTable, new: RoutingTable) -> TableDiff:
    """The effects of going from `old` to `new`, grouped by kind."""
    capabilities = _capability_changes(old, new)
    return TableDiff(
        base_sha=old.sha256,
        head_sha=new.sha256,
        warnings=tuple(new_warnings(old, new, capabilities)),
        access=tuple(_access_changes(old, new)),
        collections=tuple(_collection_changes(old, new)),
        traffic=tuple(_traffic_changes(old, new)),
        strategies=tuple(_strategy_changes(old, new)),
        settings=tuple(_setting_changes(old, new)),
        connections=tuple(_connection_changes(old, new)),
        first_choices=tuple(_first_choice_changes(old, new)),
        capabilities=tuple(capabilities),
        others=tuple(_other_changes(old, new)),
        limits=tuple(_limit_changes(old, new)),
    )
