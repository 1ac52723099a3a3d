"""plan_request: from a resolved Route to the ordered upstream attempts of one request. Pure.

The HTTP handler and `routectl explain` both call `plan_request`, so what explain shows is what
the runtime does. Two modes:

- `commit=True` (the runtime): the strategy's choice is recorded in `RoutingState` (round-robin
  cursor advanced, smooth-WRR weights updated, least-used counter incremented).
- `commit=False` ("peek", for explain): the same plan, and the state is left untouched: no
  cursor moves, no cache entry is added, no expired cooldown is pruned (`random` still draws from
  `state.rng`; `review.explain.peek_state` gives it a copy of the generator).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from routectl.runtime.affinity import affinity_selection
from routectl.runtime.auth import Caller
from routectl.runtime.errors import RoutingError
from routectl.runtime.index import TableIndex
from routectl.runtime.pool import Pool
from routectl.runtime.refusals import no_candidates
from routectl.runtime.routes import Route, RouteMember
from routectl.runtime.state import RoutingState
from routectl.runtime.strategies import STRATEGIES, Selection
from routectl.table import Connection

__all__ = ["Candidate", "RequestFacts", "RoutePlan", "plan_request"]


class RequestFacts(NamedTuple):
    """What eligibility looks at in a request. A named tuple, not a frozen dataclass: one is made
    per request, and a frozen dataclass's __init__ sets each field through object.__setattr__
    (0.69 against 0.22 µs, positional)."""

    prompt_tokens: int = 0  # an estimate (characters / 4)
    needs_tools: bool = False
    needs_vision: bool = False
    max_output_tokens: int = 0  # the request's max_tokens, reserved in the context window
    # the 64-bit hash of the request's session key, when its collection has affinity (the key
    # itself never reaches the planner): see runtime/affinity.py
    affinity_hash: int | None = None


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
    total_members: int
    committed: bool
    info: dict[str, Any] = field(default_factory=dict)  # strategy fields (_usage_at_selection...)
    selection: Selection | None = None
    pool: Pool | None = None  # the members the strategy chose among
    secondary: tuple[RouteMember, ...] = ()  # eligible but lacking a wanted capability
    too_large: bool = False  # some member was left out because the request does not fit it
    # no candidate: every active member is one the caller may use no connection for
    denied: bool = False
    # no candidate: seconds until the soonest cooldown of a member that would serve ends
    retry_after: int | None = None

    @property
    def eligible(self) -> tuple[RouteMember, ...]:
        """The eligible members in the strategy's order, then those lacking a wanted capability."""
        # built on demand: the request path only needs the first few, via `candidates`
        if self.pool is None or self.selection is None:
            return self.secondary
        return (*map(self.pool.members.__getitem__, self.selection.order), *self.secondary)

    @property
    def available_models(self) -> int:
        """How many members were eligible."""
        return (self.pool.n if self.pool is not None else 0) + len(self.secondary)

    def error(self) -> RoutingError:
        """The error to answer when there is no candidate at all (runtime/refusals.py)."""
        return no_candidates(self)


def _exclusion(
    kind: str, m: RouteMember, conns: tuple[Connection, ...], problems: list[str]
) -> list[str]:
    if kind in ("model", "handle"):
        # one model: say which connection has which problem
        return [f"{c.id}: {why}" for c, why in zip(conns, problems, strict=True)]
    return [f"{m.model}: {'; '.join(dict.fromkeys(problems))}"]


def _candidate(m: RouteMember, c: Connection) -> Candidate:
    upstream = c.upstream_names.get(m.model_id) or (m.info.name if m.info else m.model_id)
    return Candidate(m.model_id, m, c, c.id, c.priority, m.priority, upstream)


class _Prepared(NamedTuple):
    """What eligibility can know about a member before the request: everything but time and size."""

    member: RouteMember
    window: int | None  # context window
    conns: tuple[Connection, ...]  # every connection the caller may use for it
    usable: tuple[Candidate, ...]  # the attempts through those with credentials, best first
    static_exclusions: tuple[str, ...]  # set when the member can never be eligible for this caller
    denied: bool = False  # active, and the caller may use no connection for it


# the pools of eligible sets seen while something cools down, per (route, caller): bounded
_MAX_POOLS = 32


class RoutePrep:
    """Everything about a (route, caller) pair that does not depend on time or request size
    (cached in `RoutingState.prepared`; built again when credentials change on reload)."""

    __slots__ = (
        "denied",
        "deployments",
        "entries",
        "excluded",
        "kind",
        "members",
        "min_window",
        "pool",
        "pools",
        "usable",
    )

    def __init__(self, route: Route, entries: list[_Prepared]) -> None:
        self.members = route.members  # identity: the prep is valid for this route's members
        self.kind = route.kind
        self.entries = entries
        live = [e for e in entries if not e.static_exclusions]
        # the answer when nothing of this route cools down and the request fits every window
        self.pool: Pool | None = Pool([e.member for e in live]) if live else None
        self.usable: dict[int, tuple[Candidate, ...]] = {e.member.position: e.usable for e in live}
        self.excluded: tuple[str, ...] = tuple(x for e in entries for x in e.static_exclusions)
        active = [e for e in entries if e.member.active]
        # a collection none of whose members the caller may use: 403, not a 503 to retry
        self.denied = bool(active) and all(e.denied for e in active)
        windows = [e.window for e in live if e.window is not None]
        self.min_window: float = min(windows) if windows else float("inf")
        # the (connection, model) deployments whose cooldown would change the answer
        self.deployments: frozenset[tuple[str, str]] = frozenset(
            (c.connection_id, c.model_id) for e in live for c in e.usable
        )
        self.pools: dict[tuple[int, ...], Pool] = {}

    def pool_of(self, eligible: list[RouteMember], remember: bool) -> Pool | None:
        """The (cached) pool of an eligible subset: stable identity for a recurring subset."""
        if not eligible:
            return None
        positions = tuple(m.position for m in eligible)
        pool = self.pools.get(positions)
        if pool is None:
            pool = Pool(eligible)
            if remember:
                if len(self.pools) >= _MAX_POOLS:
                    self.pools.clear()
                self.pools[positions] = pool
        return pool


def _prepare(index: TableIndex, state: RoutingState, route: Route, caller: Caller) -> RoutePrep:
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
            entries.append(_Prepared(m, window, (), (), (why,), denied=True))
            continue
        usable = tuple(_candidate(m, c) for c in conns if c.id not in unavailable)
        static: tuple[str, ...] = ()
        if not usable:
            static = tuple(_exclusion(route.kind, m, conns, [unavailable[c.id] for c in conns]))
        entries.append(_Prepared(m, window, conns, usable, static))
    return RoutePrep(route, entries)


def _prepared(
    index: TableIndex, state: RoutingState, route: Route, caller: Caller, commit: bool
) -> RoutePrep:
    prep = _prepare(index, state, route, caller)
    # load balancers are keyed by client input: not worth caching; a peek adds nothing to state
    if commit and route.kind != "load_balancer":
        state.prepared[(route.key, caller.owners)] = prep
    return prep


def _cooling(state: RoutingState, prep: RoutePrep, now: float, commit: bool) -> bool:
    """Whether some deployment of the route cools down now (a commit prunes expired cooldowns)."""
    cooling = state.cooldowns
    if not cooling or cooling.keys().isdisjoint(prep.deployments):
        return False
    if commit:
        return state.prune_cooldowns(now) and not cooling.keys().isdisjoint(prep.deployments)
    return any(cooling[key].until > now for key in prep.deployments if key in cooling)


class _Eligibility(NamedTuple):
    """The slow path's answer: the pool, each member's live attempts, and why others are out."""

    pool: Pool | None
    usable: dict[int, tuple[Candidate, ...]]
    excluded: Sequence[str]
    too_large: bool = False  # some member's context window is too small for the request
    ready_at: float | None = None  # the soonest end of a cooldown that keeps a member out


def _eligibility(
    prep: RoutePrep, state: RoutingState, need_tokens: int, now: float, commit: bool
) -> _Eligibility:
    """The slow path: some deployment of the route cools down, or the request is large."""
    excluded: list[str] = []
    eligible: list[RouteMember] = []
    usable: dict[int, tuple[Candidate, ...]] = {}
    cooldown_of = state.cooldown_of
    too_large = False
    ready_at: float | None = None
    for m, window, conns, ok, static, _ in prep.entries:
        if static:
            excluded.extend(static)
            continue
        if window is not None and need_tokens > window:
            excluded.append(
                f"{m.model}: context window {window} too small for ~{need_tokens} tokens"
            )
            too_large = True
            continue
        cooling = [cooldown_of(c.connection_id, m.model_id, now) for c in ok]
        live = tuple(c for c, cd in zip(ok, cooling, strict=True) if cd is None)
        if not live:
            problems = [
                state.unavailable_reason(c.id, m.model_id, now) or "available" for c in conns
            ]
            excluded.extend(_exclusion(prep.kind, m, conns, problems))
            ends = [cd.until for cd in cooling if cd is not None]
            if ends and (ready_at is None or min(ends) < ready_at):
                ready_at = min(ends)
            continue
        eligible.append(m)
        usable[m.position] = live
    pool = prep.pool_of(eligible, remember=commit)
    return _Eligibility(pool, usable, excluded, too_large, ready_at)


_WANTED = {
    (True, False): frozenset({"tools"}),
    (False, True): frozenset({"vision"}),
    (True, True): frozenset({"tools", "vision"}),
}


# What to prefer, best first: both capabilities, then tools alone (a request with tools fails
# without them; an image is at worst ignored), then vision alone.
_FALLBACK_WANTS = (frozenset({"tools"}), frozenset({"vision"}))


def _preferred(pool: Pool, wanted: frozenset[str]) -> tuple[Pool, tuple[RouteMember, ...]]:
    """Members with every wanted capability first (cached per pool); when none has them all,
    those with tools, else those with vision; all of them when none has any."""
    split = pool.preferred.get(wanted)
    if split is None:
        split = (pool, ())
        for want in (wanted, *(w for w in _FALLBACK_WANTS if w < wanted)):
            preferred = [m for m in pool.members if want <= m.capabilities]
            if preferred:
                if len(preferred) < pool.n:
                    rest = tuple(m for m in pool.members if not want <= m.capabilities)
                    split = (Pool(preferred), rest)
                break
        pool.preferred[wanted] = split
    return split


def plan_request(
    index: TableIndex,
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
    prep = state.prepared.get((route.key, caller.owners))
    # members, not the route: a request's retry/timeout override copies the route, not them
    if prep is None or prep.members is not route.members:
        prep = _prepared(index, state, route, caller, commit)
    need_tokens = facts.prompt_tokens + facts.max_output_tokens
    slow: _Eligibility | None = None
    # _cooling's own first test inline: with no cooldown anywhere most requests skip the call
    if need_tokens > prep.min_window or (state.cooldowns and _cooling(state, prep, now, commit)):
        slow = _eligibility(prep, state, need_tokens, now, commit)
        pool, usable, excluded = slow.pool, slow.usable, slow.excluded
    else:  # the common case: the answer precomputed for this (route, caller)
        pool, usable, excluded = prep.pool, prep.usable, prep.excluded

    secondary: tuple[RouteMember, ...] = ()
    if pool is not None and (facts.needs_tools or facts.needs_vision):
        pool, secondary = _preferred(pool, _WANTED[(facts.needs_tools, facts.needs_vision)])

    if pool is None:
        # why nothing is left decides the answer (runtime/refusals.py)
        ready_at = slow.ready_at if slow is not None else None
        return RoutePlan(
            route,
            (),
            tuple(excluded),
            len(route.members),
            committed=False,
            too_large=slow is not None and slow.too_large,
            denied=prep.denied,
            retry_after=None if ready_at is None else math.ceil(ready_at - now),
        )

    strategy = STRATEGIES[route.strategy]
    selection = strategy.select(route, pool, state)
    if facts.affinity_hash is not None:
        # the key's member first, the strategy's order as the fallback; the strategy did not
        # choose, so its cursors and counters stay as they are
        selection = affinity_selection(pool, selection, facts.affinity_hash)
    elif commit:
        strategy.commit(route, pool, selection, state)
    # the first max_attempts of the members' attempts, in order
    limit = route.max_attempts if route.max_attempts > 0 else 1
    members = pool.members
    candidates: list[Candidate] = []
    for i in selection.order:
        candidates += usable[members[i].position]
        if len(candidates) >= limit:
            break
    else:
        for m in secondary:
            candidates += usable[m.position]
            if len(candidates) >= limit:
                break
    del candidates[limit:]
    return RoutePlan(
        route,
        tuple(candidates),
        tuple(excluded),
        len(route.members),
        commit,
        selection.info,
        selection,
        pool,
        secondary,
    )
