"""Lowering: a validated authoring config -> the frozen RoutingTable. Pure; no I/O.

Everything that can be decided before a request arrives is decided here, so the runtime only
looks things up: defaults resolved into every collection and connection, member order, normalized
weights, per-model connection order, the alias map, key digests.
"""

from __future__ import annotations

import math

from routectl import table as t
from routectl.compiler import model as m
from routectl.compiler.validate import split_member_model

__all__ = ["OWNER_KIND_RANK", "lower"]

# Among connections of equal priority, a caller's own connection wins over its organization's,
# which wins over the platform's: the same order as the default priorities.
OWNER_KIND_RANK: dict[t.OwnerKind, int] = {"user": 0, "organization": 1, "platform": 2}


def lower(config: m.RoutingConfig) -> t.RoutingTable:
    """The routing table of a valid config (its sha256 left empty; dump_table computes it)."""
    defaults = _defaults(config.defaults)
    users = _users(config)
    connections = _connections(config, defaults)
    collections = {name: _collection(name, c, defaults) for name, c in config.collections.items()}
    aliases: dict[str, str] = {}
    for name, coll in collections.items():
        if coll.scope == "system":
            aliases[name] = name
            for alias in coll.aliases:
                aliases[alias] = name
    return t.RoutingTable(
        format=t.TABLE_FORMAT,
        defaults=defaults,
        organizations={
            h: t.Organization(h, o.display_name or h, tuple(o.members))
            for h, o in config.organizations.items()
        },
        users=users,
        providers={n: t.Provider(n, p.api, p.base_url) for n, p in config.providers.items()},
        models={i: _model(i, s) for i, s in config.models.items()},
        connections=connections,
        model_connections=_model_connections(config, connections),
        collections=collections,
        aliases=aliases,
        api_keys={k: u.handle for u in users.values() for k in u.api_keys},
        limits=_limits(config.limits),
    )


def _limit(limit: m.Limit) -> t.Limit:
    return t.Limit(
        requests_per_minute=limit.requests_per_minute,
        tokens_per_minute=limit.tokens_per_minute,
        usd_per_day=float(limit.usd_per_day) if limit.usd_per_day is not None else None,
        usd_per_month=float(limit.usd_per_month) if limit.usd_per_month is not None else None,
        fail=limit.fail,
    )


def _limits(limits: m.Limits) -> t.Limits:
    return t.Limits(
        users={h: _limit(lim) for h, lim in limits.users.items()},
        organizations={h: _limit(lim) for h, lim in limits.organizations.items()},
        collections={n: _limit(lim) for n, lim in limits.collections.items()},
    )


def _defaults(d: m.Defaults) -> t.Defaults:
    return t.Defaults(
        cooldown_s=float(d.cooldown_s),
        timeout_ms=d.timeout_ms,
        max_attempts=d.max_attempts,
        fallback_on=_conditions(d.fallback_on),
        allowed_fails=d.allowed_fails,
        max_cooldown_s=float(d.max_cooldown_s),
        priority_user=d.priority.user,
        priority_organization=d.priority.organization,
        priority_platform=d.priority.platform,
    )


def _conditions(conditions: list[m.FallbackCondition]) -> tuple[str, ...]:
    # the table keeps every condition as text: "429" next to "timeout"
    return tuple(str(x) for x in conditions)


def _users(config: m.RoutingConfig) -> dict[str, t.User]:
    memberships: dict[str, list[str]] = {}
    for org, o in config.organizations.items():
        for member in o.members:
            memberships.setdefault(member, []).append(org)
    return {
        h: t.User(
            h, u.display_name or h, tuple(sorted(set(memberships.get(h, [])))), tuple(u.api_keys)
        )
        for h, u in config.users.items()
    }


def _model(model_id: str, spec: m.ModelSpec) -> t.Model:
    provider, _, name = model_id.partition("/")
    return t.Model(
        id=model_id,
        provider=provider,
        name=name,
        context_window=spec.context_window,
        max_output_tokens=spec.max_output_tokens,
        input_per_mtok=float(spec.pricing.input_per_mtok),
        output_per_mtok=float(spec.pricing.output_per_mtok),
        capabilities=tuple(spec.capabilities),
        trust_level=spec.trust_level,
        free=spec.free,
        kind=spec.kind,
    )


def _owner_kind(config: m.RoutingConfig, owner: str) -> t.OwnerKind:
    if owner == "platform":
        return "platform"
    return "user" if owner in config.users else "organization"


def _connections(config: m.RoutingConfig, defaults: t.Defaults) -> dict[str, t.Connection]:
    default_priority: dict[t.OwnerKind, int] = {
        "user": defaults.priority_user,
        "organization": defaults.priority_organization,
        "platform": defaults.priority_platform,
    }
    out: dict[str, t.Connection] = {}
    for c in config.connections:
        provider = config.providers[c.provider]
        kind = _owner_kind(config, c.owner)
        out[c.id] = t.Connection(
            id=c.id,
            owner=c.owner,
            owner_kind=kind,
            provider=c.provider,
            api=provider.api,
            base_url=c.base_url or provider.base_url,
            api_key_env=c.credentials.api_key_env if c.credentials else None,
            priority=c.priority if c.priority is not None else default_priority[kind],
            models=tuple(c.models),
            upstream_names={
                mid: c.upstream_names.get(mid, mid.partition("/")[2]) for mid in c.models
            },
        )
    return out


def _model_connections(
    config: m.RoutingConfig, connections: dict[str, t.Connection]
) -> dict[str, tuple[str, ...]]:
    serving: dict[str, list[t.Connection]] = {mid: [] for mid in config.models}
    for conn in connections.values():
        for mid in conn.models:
            serving[mid].append(conn)
    return {
        mid: tuple(
            c.id
            for c in sorted(conns, key=lambda c: (-c.priority, OWNER_KIND_RANK[c.owner_kind], c.id))
        )
        for mid, conns in serving.items()
    }


def _collection(name: str, c: m.Collection, defaults: t.Defaults) -> t.Collection:
    # fsum: exact, so the same weights give the same bytes on every Python (3.12 changed sum())
    active_total = math.fsum(mem.weight for mem in c.members if mem.active)
    members = []
    for index, mem in enumerate(c.members):
        handle, model_id = split_member_model(mem.model)
        share = mem.weight / active_total if mem.active and active_total > 0 else 0.0
        members.append(
            t.Member(
                model=mem.model,
                model_id=model_id,
                handle=handle,
                weight=float(mem.weight),
                normalized_weight=share,
                priority=mem.priority,
                tags=tuple(mem.tags),
                active=mem.active,
                declared_index=index,
            )
        )
    members.sort(key=lambda mem: (-mem.priority, mem.declared_index))
    return t.Collection(
        name=name,
        display_name=c.display_name or name,
        description=c.description,
        scope=c.scope,
        owner=c.owner,
        strategy=c.strategy,
        aliases=tuple(c.aliases),
        members=tuple(members),
        fallback_on=(
            _conditions(c.fallback_on) if c.fallback_on is not None else defaults.fallback_on
        ),
        max_attempts=c.max_attempts if c.max_attempts is not None else defaults.max_attempts,
        timeout_ms=c.timeout_ms if c.timeout_ms is not None else defaults.timeout_ms,
        metadata=dict(c.metadata),
        affinity=c.affinity.key if c.affinity is not None else None,
    )
