"""Who may use what in a table, for diffing two tables; the rules are the runtime's own."""

from __future__ import annotations

from dataclasses import dataclass

from routectl.runtime.resolve import index_of, visible_collections
from routectl.table import Collection, Connection, RoutingTable

__all__ = [
    "Access",
    "access_of",
    "connection_chain",
    "may_see_collection",
    "may_use_connection",
    "organization_access_of",
]


@dataclass(frozen=True, slots=True)
class Access:
    """The names one caller (or one organization) may send as `model`."""

    collections: frozenset[str]  # "collection/NAME"
    models: frozenset[str]  # "provider/model"
    handles: frozenset[str]  # "HANDLE/*": HANDLE/provider/model names

    def names(self) -> frozenset[str]:
        """All names in one set."""
        return self.collections | self.models | self.handles


def _organizations(table: RoutingTable, handle: str) -> tuple[str, ...]:
    user = table.users.get(handle)
    return user.organizations if user is not None else ()


def may_use_connection(table: RoutingTable, handle: str, connection: Connection) -> bool:
    """A caller uses platform connections, their own, and their organizations'."""
    if connection.owner_kind == "platform":
        return True
    return connection.owner == handle or connection.owner in _organizations(table, handle)


def may_see_collection(table: RoutingTable, handle: str, collection: Collection) -> bool:
    """system: every user; organization: the owner's members; user: only the owner."""
    if collection.scope == "system":
        return True
    if collection.scope == "organization":
        return collection.owner in _organizations(table, handle)
    return collection.owner == handle


def connection_chain(table: RoutingTable, handle: str, model_id: str) -> tuple[str, ...]:
    """The connections a caller's `provider/model` request walks, first choice first."""
    caller = index_of(table).callers.get(handle)
    if caller is None:
        return ()
    return tuple(c.id for c in index_of(table).connections_for(caller, model_id, None))


def access_of(table: RoutingTable, handle: str) -> Access:
    """Everything one user may name; empty when the user does not exist in the table."""
    caller = index_of(table).callers.get(handle)
    user = table.users.get(handle)
    if caller is None or user is None or not user.api_keys:
        # without a key nobody can call as this user: no access at all (a revoked last key
        # shows as the user losing everything)
        return Access(frozenset(), frozenset(), frozenset())
    collections = frozenset(f"collection/{c.name}" for c in visible_collections(table, caller))
    usable = [c for c in table.connections.values() if may_use_connection(table, handle, c)]
    models = frozenset(m for c in usable for m in c.models)
    handles = frozenset(f"{c.owner}/*" for c in usable if c.owner_kind != "platform")
    return Access(collections, models, handles)


def organization_access_of(table: RoutingTable, org: str) -> Access:
    """What membership of one organization grants: its collections, connections' models, handle."""
    if org not in table.organizations:
        return Access(frozenset(), frozenset(), frozenset())
    collections = frozenset(
        f"collection/{c.name}"
        for c in table.collections.values()
        if c.scope == "organization" and c.owner == org
    )
    owned = [c for c in table.connections.values() if c.owner == org]
    models = frozenset(m for c in owned for m in c.models)
    handles = frozenset({f"{org}/*"}) if owned else frozenset()
    return Access(collections, models, handles)
