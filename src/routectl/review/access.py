"""Who may use what in a table, for diffing two tables; the rules are the runtime's own
(`runtime.access`, `TableIndex.connections_for`), applied to each user of the table."""

from __future__ import annotations

from dataclasses import dataclass

from routectl.runtime import access
from routectl.runtime.auth import Caller
from routectl.runtime.index import TableIndex
from routectl.table import Collection, Connection, RoutingTable

__all__ = [
    "Access",
    "access_of",
    "connection_chain",
    "index_for",
    "may_see_collection",
    "may_use_connection",
    "organization_access_of",
]

# A diff asks the same two tables for every user x model: their indexes are built once. Keyed by
# identity (tables are unhashable) and bounded to the few tables one review command holds.
_RECENT: list[tuple[RoutingTable, TableIndex]] = []
_MAX_RECENT = 4


@dataclass(frozen=True, slots=True)
class Access:
    """The names one caller (or one organization) may send as `model`."""

    collections: frozenset[str]  # "collection/NAME"
    models: frozenset[str]  # "provider/model"
    handles: frozenset[str]  # "HANDLE/*": HANDLE/provider/model names

    def names(self) -> frozenset[str]:
        """All names in one set."""
        return self.collections | self.models | self.handles


def index_for(table: RoutingTable) -> TableIndex:
    """The runtime's lookup index of a table (built once per table a review command holds)."""
    for known, index in _RECENT:
        if known is table:
            return index
    index = TableIndex(table)
    _RECENT.append((table, index))
    del _RECENT[:-_MAX_RECENT]
    return index


def _caller(table: RoutingTable, handle: str) -> Caller | None:
    return index_for(table).callers.get(handle)


def may_use_connection(table: RoutingTable, handle: str, connection: Connection) -> bool:
    """A caller uses platform connections, their own, and their organizations'."""
    caller = _caller(table, handle)
    return caller is not None and access.may_use_connection(caller, connection)


def may_see_collection(table: RoutingTable, handle: str, collection: Collection) -> bool:
    """system: every user; organization: the owner's members; user: only the owner."""
    caller = _caller(table, handle)
    return caller is not None and access.may_see_collection(caller, collection)


def connection_chain(table: RoutingTable, handle: str, model_id: str) -> tuple[str, ...]:
    """The connections a caller's `provider/model` request walks, first choice first."""
    index = index_for(table)
    caller = index.callers.get(handle)
    if caller is None:
        return ()
    return tuple(c.id for c in index.connections_for(caller, model_id, None))


def access_of(table: RoutingTable, handle: str) -> Access:
    """Everything one user may name; empty when the user does not exist in the table."""
    caller = _caller(table, handle)
    user = table.users.get(handle)
    if caller is None or user is None or not user.api_keys:
        # without a key nobody can call as this user: no access at all (a revoked last key
        # shows as the user losing everything)
        return Access(frozenset(), frozenset(), frozenset())
    collections = frozenset(
        f"collection/{c.name}" for c in access.visible_collections(table, caller)
    )
    usable = [c for c in table.connections.values() if access.may_use_connection(caller, c)]
    models = frozenset(m for c in usable for m in c.models)
    handles = frozenset(f"{c.owner}/*" for c in usable if c.owner_kind != "platform")
    return Access(collections, models, handles)


def organization_access_of(table: RoutingTable, org: str) -> Access:
    """What membership of one organization grants: its collections, connections' models, handle."""
    if org not in table.organizations:
        return Access(frozenset(), frozenset(), frozenset())
    member = Caller(org, (org,), frozenset((org,)))  # what the organization alone grants
    collections = frozenset(
        f"collection/{c.name}"
        for c in table.collections.values()
        if c.scope == "organization" and access.may_see_collection(member, c)
    )
    owned = [c for c in table.connections.values() if access.may_use_connection(member, c)]
    models = frozenset(m for c in owned for m in c.models)
    handles = frozenset({f"{org}/*"}) if owned else frozenset()
    return Access(collections, models, handles)
