"""Who may use what: the visibility and connection rules, written once (the runtime and the review
tools both call these)."""

from __future__ import annotations

from routectl.runtime.auth import Caller
from routectl.table import Collection, Connection, RoutingTable

__all__ = ["may_see_collection", "may_use_connection", "visible_collections"]


def may_see_collection(caller: Caller, collection: Collection) -> bool:
    """system: every caller; organization: the owner organization's members; user: only the owner."""
    if collection.scope == "system":
        return True
    if collection.scope == "organization":
        return collection.owner in caller.organizations
    return collection.owner == caller.handle


def may_use_connection(caller: Caller, connection: Connection) -> bool:
    """A caller uses platform connections, their own, and their organizations'."""
    return connection.owner in caller.owners


def visible_collections(table: RoutingTable, caller: Caller) -> list[Collection]:
    """Collections the caller may use, in name order."""
    return [c for _, c in sorted(table.collections.items()) if may_see_collection(caller, c)]
