"""Explain a routing decision without calling any provider, with the runtime's own code.

`route_for` and `plan_request(commit=False)` are the functions the runtime's chat handler calls,
so what explain shows is what the runtime does with the same table and state; the resolution rule
is the one `resolve` reports.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from typing import Any

import orjson

from routectl.runtime.affinity import affinity_facts
from routectl.runtime.auth import Caller
from routectl.runtime.errors import RoutingError
from routectl.runtime.index import TableIndex
from routectl.runtime.ingress.openai_chat import parse_chat_request
from routectl.runtime.plan import RequestFacts, RoutePlan, plan_request
from routectl.runtime.resolve import Resolution, Rule, route_for
from routectl.runtime.routes import Route
from routectl.runtime.state import RoutingState
from routectl.table import Limit, RoutingTable

__all__ = [
    "explain_model",
    "explain_request",
    "fresh_state",
    "limits_of",
    "peek_state",
    "simulated_environ",
]

_TIERS = {"user": "private", "organization": "organization", "platform": "platform"}
_PROBABILISTIC = frozenset({"weighted", "random"})


def simulated_environ(table: RoutingTable) -> dict[str, str]:
    """Every key env var set (to a dummy): routing as on a machine that has all credentials."""
    return {c.api_key_env: "simulated" for c in table.connections.values() if c.api_key_env}


def fresh_state(
    table: RoutingTable, environ: Mapping[str, str], rng: random.Random | None = None
) -> RoutingState:
    """The state of a process that just loaded `table` with `environ` (credentials rule included)."""
    state = RoutingState(rng=rng or random.Random(0))
    state.configure(table, environ)
    return state


def peek_state(state: RoutingState) -> RoutingState:
    """A view of a live state whose random draws do not advance the live generator.

    The copy draws what the live process would draw next, so explaining a `random` collection
    names the member the next request gets (when no other request comes in between).
    """
    peek = copy.copy(state)
    peek.rng = random.Random()
    peek.rng.setstate(state.rng.getstate())
    return peek


# how explain words each rule of the SPEC's resolution order
_RULES: dict[Rule, str] = {
    "alias": "exact system-collection name or alias",
    "auto": "auto(x) means the system collection auto-x",
    "collection": "collection/NAME",
    "handle": "HANDLE/provider/model: only that handle's connections",
    "model": "provider/model: every connection you may use, highest priority first",
    "load_balancer": "request-level load_balancer (weight_based) overrides the model field",
}


def _split(reason: str) -> dict[str, str]:
    # "<member>: <why>" for collections, "<connection>: <why>" for a single model
    subject, _, why = reason.partition(": ")
    return {"subject": subject, "reason": why}


def _shares(plan: RoutePlan) -> dict[str, float]:
    """Long-run share of first choices among the members the strategy chose from."""
    if plan.selection is None or plan.route.strategy not in _PROBABILISTIC:
        return {}
    # the strategy ordered only the preferred (tools/vision) group; the rest are fallbacks
    primary = plan.eligible[: len(plan.selection.order)]
    if plan.route.strategy == "weighted":
        total = sum(m.int_weight for m in primary)
        return {m.key: m.int_weight / total for m in primary}
    return {m.key: 1 / len(primary) for m in primary}


def _explain_plan(
    index: TableIndex, state: RoutingState, caller: Caller, plan: RoutePlan
) -> dict[str, Any]:
    now = state.clock()
    shares = _shares(plan)
    candidates = []
    for attempt, cand in enumerate(plan.candidates, start=1):
        conn = cand.connection
        candidates.append(
            {
                "attempt": attempt,
                "member": cand.member.model,
                "model": cand.model_id,
                "connection": cand.connection_id,
                "owner": conn.owner,
                "tier": _TIERS[conn.owner_kind],
                "connection_priority": cand.priority,
                "member_priority": cand.member_priority,
                "upstream_model": cand.upstream_model,
                "probability": shares.get(cand.member.key),
            }
        )
    chosen_among = len(plan.selection.order) if plan.selection else 0
    eligible = [
        {
            "position": i + 1,
            "member": m.model,
            "model": m.model_id,
            "probability": shares.get(m.key),
            # False: lacks a requested capability, so it only serves after the others
            "preferred": i < chosen_among,
        }
        for i, m in enumerate(plan.eligible)
    ]
    # connections passed over inside a member that still has others (e.g. an unset key)
    skipped = []
    for m in plan.eligible:
        for c in index.connections_for(caller, m.model_id, m.handle):
            why = state.unavailable_reason(c.id, m.model_id, now)
            if why is not None:
                skipped.append({"member": m.model, "connection": c.id, "reason": why})
    failure = None if plan.candidates else plan.error()
    affinity = None
    if "_affinity_key_hash" in plan.info and plan.candidates:
        affinity = {
            "key_hash": plan.info["_affinity_key_hash"],
            "member": plan.candidates[0].member.model,
        }
    return {
        "affinity": affinity,
        "candidates": candidates,
        "eligible": eligible,
        "excluded": [_split(r) for r in plan.excluded],
        "skipped_connections": skipped,
        "selection": dict(plan.info),
        "max_attempts": plan.route.max_attempts,
        "error": failure.to_body()["error"] if failure else None,
        "status": failure.status if failure else 200,
    }


def _base(index: TableIndex, caller: Caller, model: str, facts: RequestFacts) -> dict[str, Any]:
    return {
        "table": index.table.sha256,
        "request": {
            "model": model,
            "as": caller.handle,
            "tools": facts.needs_tools,
            "vision": facts.needs_vision,
            "prompt_tokens": facts.prompt_tokens,
            "max_output_tokens": facts.max_output_tokens,
        },
    }


def _error(out: dict[str, Any], exc: RoutingError) -> dict[str, Any]:
    body = exc.to_body()["error"]
    return {**out, "resolution": None, "error": body, "status": exc.status, "candidates": []}


def _explain_route(
    index: TableIndex,
    state: RoutingState,
    caller: Caller,
    resolution: Resolution,
    facts: RequestFacts,
    out: dict[str, Any],
) -> dict[str, Any]:
    route = resolution.route
    if route.collection is None or route.collection.affinity is None:
        facts = facts._replace(affinity_hash=None)  # a key means nothing without affinity
    plan = plan_request(index, state, caller, route, facts, commit=False)
    out["resolution"] = {
        "rule": _RULES[resolution.rule],
        "kind": route.kind,
        "collection": route.collection.name if route.collection else None,
        "strategy": route.strategy,
        "total_members": len(route.members),
        "affinity_key": route.collection.affinity if route.collection else None,
    }
    out.update(_explain_plan(index, state, caller, plan))
    out["limits"] = limits_of(index.table, caller, route)
    return out


_LIMIT_SCOPES = (("users", "user"), ("organizations", "organization"))


def limits_of(table: RoutingTable, caller: Caller, route: Route) -> list[dict[str, Any]]:
    """The routing.yaml limits a request of `caller` to `route` is checked against, in the
    runtime's order: the caller's, each of its organizations', the collection's."""
    limits = table.limits
    owners: list[tuple[str, str, Limit | None]] = [
        ("user", caller.handle, limits.users.get(caller.handle)),
        *(("organization", org, limits.organizations.get(org)) for org in caller.organizations),
    ]
    if route.collection is not None:
        name = route.collection.name
        owners.append(("collection", name, limits.collections.get(name)))
    out = []
    for scope, subject, limit in owners:
        if limit is None:
            continue
        entry: dict[str, Any] = {"scope": scope, "subject": subject}
        for key in ("requests_per_minute", "tokens_per_minute", "usd_per_day", "usd_per_month"):
            if getattr(limit, key) is not None:
                entry[key] = getattr(limit, key)
        entry["fail"] = limit.fail
        out.append(entry)
    return out


def explain_model(
    index: TableIndex,
    state: RoutingState,
    caller: Caller,
    model: str,
    facts: RequestFacts,
) -> dict[str, Any]:
    """How `model` resolves for `caller` and the ordered attempts; the state is not changed."""
    out = _base(index, caller, model, facts)
    try:
        resolution = route_for(index, caller, model)
    except RoutingError as exc:
        return _error(out, exc)
    return _explain_route(index, peek_state(state), caller, resolution, facts, out)


def explain_request(
    index: TableIndex, state: RoutingState, caller: Caller, body: dict[str, Any]
) -> dict[str, Any]:
    """Explain a chat-completion request body (load_balancer, retry and timeout included)."""
    try:
        call = parse_chat_request(orjson.dumps(body))
    except RoutingError as exc:
        return _error(_base(index, caller, str(body.get("model", "")), RequestFacts()), exc)
    out = _base(index, caller, call.model, call.facts)
    try:
        resolution = route_for(index, caller, call.model, call.load_balancer, call.overrides)
    except RoutingError as exc:
        return _error(out, exc)
    facts = affinity_facts(resolution.route, call.facts, {}, caller.handle, call.body)
    return _explain_route(index, peek_state(state), caller, resolution, facts, out)
