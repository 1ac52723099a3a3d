"""Warnings a reviewer must see: lints of one table and the rule for which of them a change introduces.

A table is linted on its own (a collection below its `min_models_available`, a caller whose chain
falls from private keys to platform keys); a change is blamed only for the warnings it adds.
"""

from __future__ import annotations

from routectl.review.access import connection_chain, may_see_collection
from routectl.review.effects.types import Alert, CapabilityChange
from routectl.table import Collection, RoutingTable

__all__ = ["new_warnings"]

# capabilities a request can demand (SPEC: tools, vision); losing one changes what callers can send
WATCHED_CAPABILITIES = ("tools", "vision")


def _min_models(c: Collection) -> tuple[int, int] | None:
    """(active members, metadata.min_models_available), or None without a minimum."""
    minimum = c.metadata.get("min_models_available")
    if not isinstance(minimum, int) or isinstance(minimum, bool):
        return None
    return sum(1 for m in c.members if m.active), minimum


def _min_models_warnings(table: RoutingTable) -> dict[tuple[str, str], Alert]:
    out = {}
    for c in table.collections.values():
        counts = _min_models(c)
        if counts is None:
            continue
        active, minimum = counts
        if active < minimum:
            out[("below_min_models", c.name)] = Alert(
                "below_min_models",
                c.name,
                f"collection/{c.name} has {active} active member(s), "
                f"below its metadata.min_models_available of {minimum}",
            )
    return out


def _shortfall(table: RoutingTable, name: str) -> int:
    """How many active members a collection lacks to reach its min_models_available."""
    counts = _min_models(table.collections[name])
    return 0 if counts is None else counts[1] - counts[0]


def _is_private(table: RoutingTable, cid: str) -> bool:
    return table.connections[cid].owner_kind != "platform"


def _falls_to_platform(table: RoutingTable, chain: list[str]) -> bool:
    seen_private = False
    for cid in chain:
        if _is_private(table, cid):
            seen_private = True
        elif seen_private:
            return True
    return False


def _member_chain(table: RoutingTable, user: str, c: Collection) -> list[str]:
    # the first connection of each member, in fallback order: the keys a request falls through
    chain = []
    for m in c.members:
        if not m.active:
            continue
        conns = connection_chain(table, user, m.model_id)
        if m.handle is not None:
            conns = tuple(x for x in conns if table.connections[x].owner == m.handle)
        if conns:
            chain.append(conns[0])
    return chain


def _platform_fall_warnings(table: RoutingTable) -> dict[tuple[str, str], Alert]:
    out = {}
    for user in sorted(table.users):
        for model in sorted(table.model_connections):
            chain = list(connection_chain(table, user, model))
            if _falls_to_platform(table, chain):
                out[("falls_to_platform_keys", f"{user}:{model}")] = Alert(
                    "falls_to_platform_keys",
                    f"{user}:{model}",
                    f"{user}'s requests for {model} fall back from private keys to platform keys: "
                    + " -> ".join(chain),
                )
        for c in table.collections.values():
            if c.strategy not in ("priority", "fallback") or not may_see_collection(table, user, c):
                continue
            chain = _member_chain(table, user, c)
            if _falls_to_platform(table, chain):
                out[("falls_to_platform_keys", f"{user}:collection/{c.name}")] = Alert(
                    "falls_to_platform_keys",
                    f"{user}:collection/{c.name}",
                    f"{user}'s fallback chain in collection/{c.name} falls from private keys "
                    "to platform keys: " + " -> ".join(chain),
                )
    return out


def _capability_warnings(changes: list[CapabilityChange]) -> list[Alert]:
    return [
        Alert(
            "capability_lost",
            ch.collection,
            f"collection/{ch.collection} no longer has a `{cap}` model",
        )
        for ch in changes
        for cap in ch.lost
        if cap in WATCHED_CAPABILITIES
    ]


def new_warnings(
    old: RoutingTable, new: RoutingTable, capabilities: list[CapabilityChange]
) -> list[Alert]:
    """The warnings going from `old` to `new` introduces, plus a warning per watched capability lost."""
    before = {**_min_models_warnings(old), **_platform_fall_warnings(old)}
    after = {**_min_models_warnings(new), **_platform_fall_warnings(new)}
    # Only what this change introduces; standing warnings are not the PR's doing. A chain that
    # already fell to platform keys is not new when it merely changes order, a collection below
    # its minimum only when it falls further, and a user added by the change (every user, when
    # the base has no config) has no "before" to fall from: their chains are their peers'.
    fresh = [
        w
        for key, w in sorted(after.items())
        if (
            key not in before
            or (w.kind == "below_min_models" and _shortfall(new, key[1]) > _shortfall(old, key[1]))
        )
        and (w.kind != "falls_to_platform_keys" or w.subject.split(":", 1)[0] in old.users)
    ]
    order = {"below_min_models": 0, "capability_lost": 1, "falls_to_platform_keys": 2}
    return sorted(
        fresh + _capability_warnings(capabilities), key=lambda w: (order[w.kind], w.subject)
    )
