"""Authentication and model-name resolution: bearer key -> Caller, `model` -> Route. Pure, no I/O.

Everything the hot path needs is precomputed once per table in a `TableIndex` (see `index_of`):
callers by key digest, routes of collections, and per (caller, model, pinned handle) the
connections that caller may use, in fallback order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from routectl.table import Collection, Connection, Model, RoutingTable

__all__ = [
    "Caller",
    "Route",
    "RouteKind",
    "RouteMember",
    "RoutingError",
    "TableIndex",
    "authenticate",
    "index_of",
    "load_balancer_route",
    "resolve",
    "visible_collections",
]

RouteKind = Literal["collection", "handle", "model", "load_balancer"]


class RoutingError(Exception):
    """A request that cannot be routed: carries the SPEC's error code, HTTP status and extra fields."""

    def __init__(
        self, code: str, status: int, message: str, extra: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.extra: dict[str, Any] = dict(extra or {})

    def to_body(self) -> dict[str, Any]:
        """The error as the SPEC's `{"error": {"code", "message", ...}}` body."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        error.update(self.extra)
        return {"error": error}


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated user: its handle, its organizations, and every owner whose connections it may use."""

    handle: str
    organizations: tuple[str, ...]
    owners: frozenset[str]  # {handle, *organizations, "platform"}

    @property
    def scope(self) -> str:
        """The caller's scope as reported in `access_denied` (`user_scope`)."""
        return "organization" if self.organizations else "individual"


@dataclass(frozen=True, slots=True)
class RouteMember:
    """One thing a route may pick: a model, optionally pinned to one handle's connections."""

    key: str  # the state key within its route: the model as written
    model: str  # as written: "provider/model" or "handle/provider/model"
    model_id: str
    handle: str | None
    weight: float
    int_weight: int  # weight * 1,000,000: smooth WRR splits exactly with integers
    priority: int
    active: bool
    declared_index: int
    position: int  # index in Route.members
    info: Model | None
    cost: float
    trust_level: int
    capabilities: frozenset[str]
    # least_used tie-break: higher trust, then lower cost (then member order)
    tie: tuple[int, float]


@dataclass(frozen=True, slots=True)
class Route:
    """What a `model` name named, and the members a strategy chooses among."""

    kind: RouteKind
    requested: str
    key: str  # the state key of the route (cursors, weights, usage counters)
    strategy: str  # as written in routing.yaml ("fallback" stays "fallback")
    members: tuple[RouteMember, ...]
    max_attempts: int
    fallback_on: frozenset[str]
    timeout_ms: int
    collection: Collection | None = None
    positions: Mapping[str, int] = field(default_factory=dict)  # member key -> position


# Weights are written with up to 6 decimals in practice; smooth WRR's sequence does not change
# when every weight is scaled by the same factor, so 0.7/0.3 still splits 7/3 in every 10.
_WEIGHT_SCALE = 1_000_000


def _member(
    table: RoutingTable,
    position: int,
    model: str,
    model_id: str,
    handle: str | None,
    weight: float,
    priority: int = 0,
    active: bool = True,
    declared_index: int = 0,
) -> RouteMember:
    info = table.models.get(model_id)
    return RouteMember(
        key=model,
        model=model,
        model_id=model_id,
        handle=handle,
        weight=weight,
        int_weight=max(1, round(weight * _WEIGHT_SCALE)),
        priority=priority,
        active=active,
        declared_index=declared_index,
        position=position,
        info=info,
        cost=info.cost if info else 0.0,
        trust_level=info.trust_level if info else 0,
        capabilities=frozenset(info.capabilities) if info else frozenset(),
        tie=(-(info.trust_level if info else 0), info.cost if info else 0.0),
    )


def _collection_route(table: RoutingTable, c: Collection) -> Route:
    members = tuple(
        _member(
            table,
            i,
            m.model,
            m.model_id,
            m.handle,
            m.weight,
            m.priority,
            m.active,
            m.declared_index,
        )
        for i, m in enumerate(c.members)
    )
    return Route(
        kind="collection",
        requested=f"collection/{c.name}",
        key=f"collection:{c.name}",
        strategy=c.strategy,
        members=members,
        max_attempts=c.max_attempts,
        fallback_on=frozenset(c.fallback_on),
        timeout_ms=c.timeout_ms,
        collection=c,
        positions={m.key: m.position for m in members},
    )


def _single_route(
    table: RoutingTable, kind: RouteKind, requested: str, model_id: str, handle: str | None
) -> Route:
    d = table.defaults
    member = _member(table, 0, requested, model_id, handle, 1.0)
    return Route(
        kind=kind,
        requested=requested,
        key=f"{kind}:{requested}",
        strategy="priority",
        members=(member,),
        max_attempts=d.max_attempts,
        fallback_on=frozenset(d.fallback_on),
        timeout_ms=d.timeout_ms,
        positions={member.key: 0},
    )


class _CollectionRoutes(dict[str, Route]):
    """collection name -> its Route, each built the first time it is asked for."""

    def __init__(self, table: RoutingTable) -> None:
        super().__init__()
        self._table = table

    def __missing__(self, name: str) -> Route:
        route = _collection_route(self._table, self._table.collections[name])
        self[name] = route
        return route


class TableIndex:
    """Lookup structures derived once from a table, so a request only does dict lookups."""

    def __init__(self, table: RoutingTable) -> None:
        self.table = table
        self.handles: frozenset[str] = frozenset(table.users) | frozenset(table.organizations)
        self.callers: dict[str, Caller] = {
            h: Caller(h, u.organizations, frozenset((h, *u.organizations, "platform")))
            for h, u in table.users.items()
        }
        # built on first use: a 10,000-collection table then starts in milliseconds and only
        # the collections that see traffic cost memory
        self.collection_routes = _CollectionRoutes(table)
        self._single_routes: dict[tuple[str, str | None], Route] = {}
        self._connections: dict[tuple[frozenset[str], str, str | None], tuple[Connection, ...]] = {}
        # (caller handle, caller owners, model name) -> the Route `resolve` answered (successes
        # only, so client input cannot grow it past the names callers may really use)
        self.resolved: dict[tuple[str, frozenset[str], str], Route] = {}
        # bearer key -> caller, for keys that authenticated: one sha256 per key, not per request
        self.by_key: dict[str, Caller] = {}

    def single_route(
        self, kind: RouteKind, requested: str, model_id: str, handle: str | None
    ) -> Route:
        """The cached Route of a `provider/model` or `HANDLE/provider/model` name."""
        key = (requested, handle)
        route = self._single_routes.get(key)
        if route is None:
            route = _single_route(self.table, kind, requested, model_id, handle)
            self._single_routes[key] = route
        return route

    def connections_for(
        self, caller: Caller, model_id: str, handle: str | None
    ) -> tuple[Connection, ...]:
        """Connections serving `model_id` that `caller` may use (only `handle`'s when pinned), best first."""
        key = (caller.owners, model_id, handle)
        found = self._connections.get(key)
        if found is None:
            conns = self.table.connections
            found = tuple(
                conns[cid]
                for cid in self.table.model_connections.get(model_id, ())
                if conns[cid].owner in caller.owners
                and (handle is None or conns[cid].owner == handle)
            )
            self._connections[key] = found
        return found


# A few tables live at once at most (current, and the previous one during a reload); keyed by
# identity because tables built in tests have no sha256 yet.
_INDEXES: dict[int, tuple[RoutingTable, TableIndex]] = {}
_MAX_INDEXES = 8
_MAX_CACHED = 100_000  # entries per index cache (resolved names, authenticated keys)


def index_of(table: RoutingTable) -> TableIndex:
    """The (cached) lookup index of a table."""
    entry = _INDEXES.get(id(table))
    if entry is not None and entry[0] is table:
        return entry[1]
    index = TableIndex(table)
    if len(_INDEXES) >= _MAX_INDEXES:
        _INDEXES.pop(next(iter(_INDEXES)))
    _INDEXES[id(table)] = (table, index)
    return index


def authenticate(table: RoutingTable, bearer_key: str | None) -> Caller | None:
    """The caller whose key digest is `sha256(bearer_key)`, or None for a missing or unknown key."""
    if not bearer_key:
        return None
    index = index_of(table)
    caller = index.by_key.get(bearer_key)
    if caller is not None:
        return caller
    # surrogatepass: a header with bytes that are not UTF-8 is just an unknown key (401)
    digest = "sha256:" + hashlib.sha256(bearer_key.encode("utf-8", "surrogatepass")).hexdigest()
    handle = table.api_keys.get(digest)
    if handle is None:
        return None  # unknown keys are not remembered: they would grow the cache unboundedly
    caller = index.callers.get(handle)
    if caller is not None and len(index.by_key) < _MAX_CACHED:
        index.by_key[bearer_key] = caller
    return caller


def _may_see(caller: Caller, c: Collection) -> bool:
    if c.scope == "system":
        return True
    if c.scope == "organization":
        return c.owner in caller.organizations
    return c.owner == caller.handle


def visible_collections(table: RoutingTable, caller: Caller) -> list[Collection]:
    """Collections the caller may use, in name order."""
    return [c for _, c in sorted(table.collections.items()) if _may_see(caller, c)]


def _collection(table: RoutingTable, caller: Caller, name: str, requested: str) -> Route:
    c = table.collections.get(name)
    # another user's user-scoped collection answers exactly like a missing one
    if c is None or (c.scope == "user" and c.owner != caller.handle):
        raise RoutingError(
            "collection_not_found",
            404,
            # the name as the seed's error shows it: `flash2.5`, not `collection/flash2.5`
            f"Collection '{requested.removeprefix('collection/')}' not found or access denied",
        )
    if c.scope == "organization" and c.owner not in caller.organizations:
        raise RoutingError(
            "access_denied",
            403,
            f"Your organization does not have access to {c.name} collection",
            {"required_scope": "organization", "user_scope": caller.scope},
        )
    return index_of(table).collection_routes[name]


def _required_scope(table: RoutingTable, owner: str) -> str:
    return "organization" if owner in table.organizations else "user"


def resolve(table: RoutingTable, caller: Caller, model_name: str) -> Route:
    """Resolve a request's `model` field to a Route, in the SPEC's order; raise RoutingError (403/404)."""
    index = index_of(table)
    key = (caller.handle, caller.owners, model_name)
    route = index.resolved.get(key)
    if route is None:
        route = _resolve(table, caller, model_name)  # raises for names that do not resolve
        if len(index.resolved) >= _MAX_CACHED:
            index.resolved.clear()
        index.resolved[key] = route
    return route


def _resolve(table: RoutingTable, caller: Caller, model_name: str) -> Route:
    # 1. exact system-collection name or alias; auto(x) means the system collection auto-x
    target = table.aliases.get(model_name)
    if target is not None:
        return _collection(table, caller, target, model_name)
    if model_name.startswith("auto(") and model_name.endswith(")"):
        name = "auto-" + model_name[5:-1]
        target = table.aliases.get(name)
        if target is None:
            raise RoutingError(
                "collection_not_found", 404, f"Collection '{model_name}' not found or access denied"
            )
        return _collection(table, caller, target, model_name)
    # 2. collection/NAME
    if model_name.startswith("collection/"):
        name = model_name[11:]
        return _collection(table, caller, table.aliases.get(name, name), model_name)
    index = index_of(table)
    # 3. HANDLE/provider/model (a handle never equals a provider name, so this is unambiguous)
    head, sep, rest = model_name.partition("/")
    if sep and head in index.handles and rest in table.models:
        if head not in caller.owners:
            raise RoutingError(
                "access_denied",
                403,
                f"You may not use the connections of '{head}'",
                {"required_scope": _required_scope(table, head), "user_scope": caller.scope},
            )
        if not index.connections_for(caller, rest, head):
            raise RoutingError(
                "model_not_found", 404, f"'{head}' has no connection serving '{rest}'"
            )
        return index.single_route("handle", model_name, rest, head)
    # 4. provider/model
    if model_name in table.models:
        if not index.connections_for(caller, model_name, None):
            owners = [
                table.connections[cid].owner for cid in table.model_connections.get(model_name, ())
            ]
            raise RoutingError(
                "access_denied",
                403,
                f"You may use no connection serving '{model_name}'",
                {
                    "required_scope": _required_scope(table, owners[0]) if owners else "platform",
                    "user_scope": caller.scope,
                },
            )
        return index.single_route("model", model_name, model_name, None)
    raise RoutingError("model_not_found", 404, f"Model '{model_name}' not found")


def load_balancer_route(
    table: RoutingTable, caller: Caller, entries: Sequence[tuple[str, float]]
) -> Route:
    """The Route of a request-level `load_balancer` (weight_based): a smooth-WRR route over its models.

    Every entry must name a model (`provider/model` or `HANDLE/provider/model`) the caller may use;
    the first error of `resolve` is raised. The request's own `model` field is ignored, as in
    other routers' weight-based load balancers; attempts, fallback_on and timeout come from `defaults`.
    """
    members: list[RouteMember] = []
    for position, (name, weight) in enumerate(entries):
        single = resolve(table, caller, name)
        if single.kind not in ("model", "handle"):
            raise RoutingError(
                "invalid_request",
                400,
                f"load_balancer.models[{position}].model must name a model, not a collection",
            )
        m = single.members[0]
        members.append(
            _member(table, position, name, m.model_id, m.handle, weight, declared_index=position)
        )
    key = "lb:" + "\x00".join(name for name, _ in entries)
    d = table.defaults
    return Route(
        kind="load_balancer",
        requested="load_balancer",
        key=key,
        strategy="weighted",
        members=tuple(members),
        max_attempts=d.max_attempts,
        fallback_on=frozenset(d.fallback_on),
        timeout_ms=d.timeout_ms,
        positions={m.key: m.position for m in members},
    )
