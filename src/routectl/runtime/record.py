"""What a routed request adds to its record (the access-log line, and the request_logs row that
`routectl serve --log-database-url` and `routectl logs load` make of it). Pure.

The envelope starts the record (request id, method, path) and ends it (status, latency, table,
time); the handlers and the forwarder add what they decide: the caller, the requested model, the
route, the selected model and connection, the attempts that failed, tokens and cost.
"""

from __future__ import annotations

from typing import Any

from routectl.runtime.auth import Caller
from routectl.runtime.resolve import Rule
from routectl.runtime.routes import Route

__all__ = ["note_route", "organization_of"]


def organization_of(caller: Caller, route: Route) -> str | None:
    """The organization a request counts toward: the owner of the organization collection it
    named, or of the organization connections it named (`ORG/provider/model`), else the caller's
    organization when the caller belongs to exactly one; None otherwise."""
    c = route.collection
    if c is not None and c.scope == "organization":
        return c.owner
    if route.kind == "handle":
        handle = route.members[0].handle
        if handle in caller.organizations:
            return handle
    orgs = caller.organizations
    return orgs[0] if len(orgs) == 1 else None


def note_route(rec: dict[str, Any], caller: Caller, route: Route, rule: Rule) -> None:
    """The route a request resolved to: rule, collection, strategy, organization."""
    rec["resolution"] = rule
    if route.collection is not None:
        rec["collection"] = route.collection.name
    rec["strategy"] = route.strategy
    org = organization_of(caller, route)
    if org is not None:
        rec["organization"] = org
