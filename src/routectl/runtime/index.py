"""TableIndex: the lookup structures derived from one table, so a request only does dict lookups.

One index per served table (it travels with the table: `ServedTable.index`); the review tools
build their own with `TableIndex(table)`. Its caches fill on first use and are bounded, so a
10,000-collection table starts in milliseconds and only names that see traffic cost memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from routectl.runtime.access import may_use_connection
from routectl.runtime.auth import Caller
from routectl.runtime.routes import Route, RouteKind, collection_route, single_route
from routectl.table import Connection, RoutingTable

if TYPE_CHECKING:
    from routectl.runtime.resolve import Resolution

__all__ = ["TableIndex"]

# entries per name cache (resolved names): bounded because the names come from clients
_MAX_RESOLVED = 100_000


class _CollectionRoutes(dict[str, Route]):
    """collection name -> its Route, each built the first time it is asked for."""

    def __init__(self, table: RoutingTable) -> None:
        super().__init__()
        self._table = table

    def __missing__(self, name: str) -> Route:
        route = collection_route(self._table, self._table.collections[name])
        self[name] = route
        return route


class TableIndex:
    """Lookups derived from a table (mutable only by filling its bounded caches)."""

    def __init__(self, table: RoutingTable) -> None:
        self.table = table
        self.handles: frozenset[str] = frozenset(table.users) | frozenset(table.organizations)
        self.callers: dict[str, Caller] = {
            h: Caller(h, u.organizations, frozenset((h, *u.organizations, "platform")))
            for h, u in table.users.items()
        }
        # bearer key -> caller, for keys that authenticated (see auth.authenticate)
        self.callers_by_key: dict[str, Caller] = {}
        self.collection_routes = _CollectionRoutes(table)
        self._single_routes: dict[tuple[str, str | None], Route] = {}
        # (caller owners, model id, pinned handle) -> connections the caller may use, best first
        self._connections: dict[tuple[frozenset[str], str, str | None], tuple[Connection, ...]] = {}
        # (caller handle, caller owners, model name) -> what `resolve` answered (successes only,
        # so client input cannot grow it past the names callers may really use)
        self._resolved: dict[tuple[str, frozenset[str], str], Resolution] = {}
        # (caller handle, caller owners, model name, client format) -> the route a plain request
        # (no load_balancer, no overrides) goes to and what it adds to the request's record; only
        # for routes that passed the format's kind check (see handlers._routed)
        self.routed: dict[tuple[str, frozenset[str], str, str], tuple[Route, dict[str, Any]]] = {}

    def single_route(
        self, kind: RouteKind, requested: str, model_id: str, handle: str | None
    ) -> Route:
        """The cached Route of a `provider/model` or `HANDLE/provider/model` name."""
        key = (requested, handle)
        route = self._single_routes.get(key)
        if route is None:
            route = self._single_routes[key] = single_route(
                self.table, kind, requested, model_id, handle
            )
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
                if may_use_connection(caller, conns[cid])
                and (handle is None or conns[cid].owner == handle)
            )
            self._connections[key] = found
        return found

    def resolved(self, caller: Caller, name: str) -> Resolution | None:
        """What `resolve` answered for this caller and name before, if it succeeded."""
        return self._resolved.get((caller.handle, caller.owners, name))

    def remember(self, caller: Caller, name: str, resolution: Resolution) -> None:
        """Keep a successful resolution (the cache is cleared when it reaches its bound)."""
        if len(self._resolved) >= _MAX_RESOLVED:
            self._resolved.clear()
        self._resolved[(caller.handle, caller.owners, name)] = resolution

    def remember_routed(
        self, key: tuple[str, frozenset[str], str, str], route: Route, notes: dict[str, Any]
    ) -> None:
        """Keep a plain request's route and record notes (`routed`, bounded as `_resolved`)."""
        if len(self.routed) >= _MAX_RESOLVED:
            self.routed.clear()
        self.routed[key] = (route, notes)
