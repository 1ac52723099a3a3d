"""plan_request: from a resolved Route to the ordered upstream attempts of one request. Pure.

The HTTP handler and `routectl explain` both call `plan_request`, so what explain shows is what
the runtime does. Two modes:

- `commit=True` (the runtime): the strategy's choice is recorded in `RoutingState` (round-robin
  cursor advanced, smooth-WRR weights updated, least-used counter incremented).
- `commit=False` ("peek", for explain/simulate): the same plan, and the state is left untouched
  (`random` still draws from `state.rng`; pass a separate `random.Random` to keep a process's
  sequence intact).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from routectl.runtime.resolve import (
    Caller,
    Route,
    RouteMember,
    RoutingError,
    TableIndex,
    index_of,
)
from routectl.runtime.state import RoutingState
from routectl.runtime.strategies import Selection, get_strategy
from routectl.table import Connection, RoutingTable

__all__ = ["Candidate", "RequestFacts", "RoutePlan", "plan_request"]


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What eligibility looks at in a request."""

    prompt_tokens: int = 0  # an estimate (characters / 4)
    needs_tools: bool = False
    needs_vision: bool = False
    max_output_tokens: int = 0  # the request's max_tokens, reserved in the context window


class Candidate(NamedTuple):
    """One upstream attempt: a member served through one connection."""

    model_id: str
    member: RouteMember
    connection: Connection
    connection_id: str
    priority: int  # the connection's priority (private 100 > organization 50 > platform 0)
    member_priority: int
    upstream_model: str  # the name the upstream knows the model by


@dataclass(slots=True)
class RoutePlan:
    """The decision for one request: attempts in order, excluded members with reasons."""

    route: Route
    candidates: tuple[Candidate, ...]  # at most route.max_attempts
    excluded: tuple[str, ...]  # "<model>: <why>"
    eligible: tuple[RouteMember, ...]  # the members the strategy chose among, in its order
    total_members: int
    committed: bool
    info: dict[str, Any] = field(default_factory=dict)  # strategy fields (_usage_at_selection...)
    selection: Selection | None = None

    @property
    def available_models(self) -> int:
        """How many members were eligible."""
        return len(self.eligible)

    def error(self) -> RoutingError:
        """The 503 to answer when there is no candidate at all."""
        route = self.route
        if route.kind in ("collection", "load_balancer"):
            name = route.collection.name if route.collection else "load_balancer"
            return RoutingError(
                "collection_no_models",
                503,
                f"No models available in {name} collection",
                {
                    "details": {
                        "total_members": self.total_members,
                        "available_models": 0,
                        "reasons": list(self.excluded),
                    }
                },
            )
        return RoutingError(
            "model_unavailable",
            503,
            f"No connection for '{route.requested}' is available now",
            {"details": {"reasons": list(self.excluded)}},
        )


def _exclusion(
    route: Route, m: RouteMember, conns: tuple[Connection, ...], problems: list[str]
) -> list[str]:
    if route.kind in ("model", "handle"):
        # one model: say which connection has which problem
        return [f"{c.id}: {why}" for c, why in zip(conns, problems, strict=True)]
    return [f"{m.model}: {'; '.join(dict.fromkeys(problems))}"]


class _Prepared(NamedTuple):
    """What eligibility can know about a member before the request: everything but time and size."""

    member: RouteMember
    window: int | None  # context window
    conns: tuple[Connection, ...]  # every connection the caller may use for it
    usable: tuple[Connection, ...]  # those with credentials
    static_exclusions: tuple[str, ...]  # set when the member can never be eligible for this caller


class _RoutePrep(NamedTuple):
    route: Route
    entries: list[_Prepared]
    # the answer when nothing cools down and the request fits every context window
    eligible: list[RouteMember]
    usable: dict[int, tuple[Connection, ...]]
    excluded: list[str]
    min_window: float


def _prepare(index: TableIndex, state: RoutingState, route: Route, caller: Caller) -> _RoutePrep:
    entries: list[_Prepared] = []
    unavailable = state.unavailable
    for m in route.members:
        window = m.info.context_window if m.info else None
        if not m.active:
            entries.append(_Prepared(m, window, (), (), (f"{m.model}: inactive",)))
            continue
        conns = index.connections_for(caller, m.model_id, m.handle)
        if not conns:
            whose = f" ({m.handle})" if m.handle else ""
            why = f"{m.model}: no connection you may use{whose}"
            entries.append(_Prepared(m, window, (), (), (why,)))
            continue
        usable = tuple(c for c in conns if c.id not in unavailable)
        static: tuple[str, ...] = ()
        if not usable:
            static = tuple(_exclusion(route, m, conns, [unavailable[c.id] for c in conns]))
        entries.append(_Prepared(m, window, conns, usable, static))
    live = [e for e in entries if not e.static_exclusions]
    windows = [e.window for e in live if e.window is not None]
    return _RoutePrep(
        route,
        entries,
        [e.member for e in live],
        {e.member.position: e.usable for e in live},
        [x for e in entries for x in e.static_exclusions],
        min(windows) if windows else float("inf"),
    )


def _prepared(index: TableIndex, state: RoutingState, route: Route, caller: Caller) -> _RoutePrep:
    if route.kind == "load_balancer":  # keyed by client input: not worth caching
        return _prepare(index, state, route, caller)
    key = (route.key, caller.owners)
    prep: _RoutePrep | None = state.prepared.get(key)
    if prep is None or prep.route is not route:
        prep = state.prepared[key] = _prepare(index, state, route, caller)
    return prep


def _eligibility(
    prep: _RoutePrep, state: RoutingState, need_tokens: int, now: float
) -> tuple[list[RouteMember], dict[int, tuple[Connection, ...]], list[str]]:
    """The slow path: some deployment cools down, or the request is large."""
    route = prep.route
    excluded: list[str] = []
    eligible: list[RouteMember] = []
    usable: dict[int, tuple[Connection, ...]] = {}
    for m, window, conns, ok, static in prep.entries:
        if static:
            excluded.extend(static)
            continue
        if window is not None and need_tokens > window:
            excluded.append(
                f"{m.model}: context window {window} too small for ~{need_tokens} tokens"
            )
            continue
        live = tuple(c for c in ok if state.cooldown_of(c.id, m.model_id, now) is None)
        if not live:
            problems = [
                state.unavailable_reason(c.id, m.model_id, now) or "available" for c in conns
            ]
            excluded.extend(_exclusion(route, m, conns, problems))
            continue
        eligible.append(m)
        usable[m.position] = live
    return eligible, usable, excluded


def plan_request(
    table: RoutingTable,
    state: RoutingState,
    caller: Caller,
    route: Route,
    facts: RequestFacts,
    now: float | None = None,
    *,
    commit: bool = True,
) -> RoutePlan:
    """Decide the ordered attempts of one request; with commit=False the state is not mutated."""
    if now is None:
        now = state.clock()
    prep = _prepared(index_of(table), state, route, caller)
    need_tokens = facts.prompt_tokens + facts.max_output_tokens
    if (state.cooldowns and state.prune_cooldowns(now)) or need_tokens > prep.min_window:
        eligible, usable, excluded = _eligibility(prep, state, need_tokens, now)
    else:
        eligible, usable, excluded = prep.eligible, prep.usable, prep.excluded

    primary: list[RouteMember] = eligible
    secondary: list[RouteMember] = []
    if (facts.needs_tools or facts.needs_vision) and eligible:
        wanted = {"tools"} if facts.needs_tools else set()
        if facts.needs_vision:
            wanted.add("vision")
        preferred = [m for m in eligible if wanted <= m.capabilities]
        if preferred and len(preferred) < len(eligible):
            primary = preferred
            secondary = [m for m in eligible if not wanted <= m.capabilities]

    if not primary:
        return RoutePlan(route, (), tuple(excluded), (), len(route.members), committed=False)

    strategy = get_strategy(route.strategy)
    selection = strategy.select(route, primary, state)
    if commit:
        strategy.commit(route, primary, selection, state)
    ordered = [primary[i] for i in selection.order]
    ordered.extend(secondary)

    limit = route.max_attempts
    candidates: list[Candidate] = []
    for m in ordered:
        for c in usable[m.position]:
            candidates.append(
                Candidate(
                    m.model_id,
                    m,
                    c,
                    c.id,
                    c.priority,
                    m.priority,
                    c.upstream_names.get(m.model_id) or (m.info.name if m.info else m.model_id),
                )
            )
            if len(candidates) >= limit:
                break
        if len(candidates) >= limit:
            break
    return RoutePlan(
        route,
        tuple(candidates),
        tuple(excluded),
        tuple(ordered),
        len(route.members),
        committed=commit,
        info=selection.info,
        selection=selection,
    )
