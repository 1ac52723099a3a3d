"""Explain a routing decision without calling any provider, with the runtime's own code.

`resolve` and `plan_request(commit=False)` are the functions the runtime's chat handler calls, so
what explain shows is what the runtime does with the same table and state.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from typing import Any

import orjson

from routectl.runtime.plan import RequestFacts, RoutePlan, plan_request
from routectl.runtime.request import apply_overrides, parse_chat_request
from routectl.runtime.resolve import (
    Caller,
    Route,
    RoutingError,
    index_of,
    load_balancer_route,
    resolve,
)
from routectl.runtime.state import RoutingState
from routectl.table import RoutingTable

__all__ = [
    "explain_model",
    "explain_request",
    "fresh_state",
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


def _rule(table: RoutingTable, route: Route, name: str) -> str:
    if route.kind == "load_balancer":
        return "request-level load_balancer (weight_based) overrides the model field"
    if route.kind == "handle":
        return "HANDLE/provider/model: only that handle's connections"
    if route.kind == "model":
        return "provider/model: every connection you may use, highest priority first"
    if name in table.aliases:
        return "exact system-collection name or alias"
    if name.startswith("auto("):
        return "auto(x) means the system collection auto-x"
    return "collection/NAME"


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
    table: RoutingTable, state: RoutingState, caller: Caller, plan: RoutePlan
) -> dict[str, Any]:
    index = index_of(table)
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
    return {
        "candidates": candidates,
        "eligible": eligible,
        "excluded": [_split(r) for r in plan.excluded],
        "skipped_connections": skipped,
        "selection": dict(plan.info),
        "max_attempts": plan.route.max_attempts,
        "error": failure.to_body()["error"] if failure else None,
        "status": failure.status if failure else 200,
    }


def _base(table: RoutingTable, caller: Caller, model: str, facts: RequestFacts) -> dict[str, Any]:
    return {
        "table": table.sha256,
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
    table: RoutingTable,
    state: RoutingState,
    caller: Caller,
    route: Route,
    facts: RequestFacts,
    out: dict[str, Any],
) -> dict[str, Any]:
    plan = plan_request(table, state, caller, route, facts, commit=False)
    out["resolution"] = {
        "rule": _rule(table, route, out["request"]["model"]),
        "kind": route.kind,
        "collection": route.collection.name if route.collection else None,
        "strategy": route.strategy,
        "total_members": len(route.members),
    }
    out.update(_explain_plan(table, state, caller, plan))
    return out


def explain_model(
    table: RoutingTable,
    state: RoutingState,
    caller: Caller,
    model: str,
    facts: RequestFacts,
) -> dict[str, Any]:
    """How `model` resolves for `caller` and the ordered attempts; the state is not changed."""
    out = _base(table, caller, model, facts)
    peek = peek_state(state)
    try:
        route = resolve(table, caller, model)
    except RoutingError as exc:
        return _error(out, exc)
    return _explain_route(table, peek, caller, route, facts, out)


def explain_request(
    table: RoutingTable, state: RoutingState, caller: Caller, body: dict[str, Any]
) -> dict[str, Any]:
    """Explain a chat-completion request body (load_balancer, retry and timeout included)."""
    try:
        request = parse_chat_request(orjson.dumps(body))
    except RoutingError as exc:
        return _error(_base(table, caller, str(body.get("model", "")), RequestFacts()), exc)
    out = _base(table, caller, request.model, request.facts)
    peek = peek_state(state)
    try:
        if request.load_balancer is not None:
            route = load_balancer_route(table, caller, request.load_balancer)
        else:
            route = resolve(table, caller, request.model)
    except RoutingError as exc:
        return _error(out, exc)
    return _explain_route(table, peek, caller, apply_overrides(route, request), request.facts, out)
