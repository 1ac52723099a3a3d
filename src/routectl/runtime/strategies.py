"""Routing strategies: one small class per strategy behind one Protocol, looked up by name.

A strategy orders the eligible members of a route (`select`, no mutation) and then records its
choice (`commit`, advances cursors and counters). Keeping the two apart lets `routectl explain`
show a decision without disturbing the counters of a running process.

Strategies work on a `Pool`: the eligible members of a decision plus the arrays the strategies
read (keys, integer weights, static orders), built once per eligible set and reused by every
decision over that set, so one decision is a few C-level list operations rather than a loop
over member objects.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import add
from typing import Any, Protocol

from routectl.runtime.resolve import Route, RouteMember
from routectl.runtime.state import RoutingState

__all__ = [
    "STRATEGIES",
    "Pool",
    "Selection",
    "Strategy",
    "get_strategy",
]

# orders derived per (pool, first choice) are cached up to this size: n orders of n indices
_MEMO_MAX_MEMBERS = 64


class Pool:
    """The eligible members of one decision and the per-member arrays strategies read.

    Immutable once built: the planner caches one per eligible set, so `members` keeps its
    identity across decisions (least_used's late-joiner rule relies on that).
    """

    __slots__ = (
        "by_weight",
        "cost_order",
        "extras",
        "identity",
        "keys",
        "keyset",
        "members",
        "minus_ones",
        "model_ids",
        "models",
        "n",
        "positions",
        "tie_order",
        "total",
        "weights",
        "zeros",
        "_orders",
    )

    def __init__(self, members: list[RouteMember]) -> None:
        n = len(members)
        self.members = members
        self.n = n
        self.keys = [m.key for m in members]
        self.keyset = frozenset(self.keys)
        self.models = [m.model for m in members]
        self.model_ids = [m.model_id for m in members]
        self.positions = [m.position for m in members]  # ascending: members keep route order
        self.weights = [m.int_weight for m in members]
        self.total = sum(self.weights)
        self.zeros = [0] * n
        self.minus_ones = [-1.0] * n
        self.identity = tuple(range(n))
        # stable sorts: equal keys keep member order
        ties = [m.tie for m in members]
        self.tie_order = sorted(range(n), key=ties.__getitem__)
        costs = [m.cost for m in members]
        self.cost_order = tuple(sorted(range(n), key=costs.__getitem__))
        self.by_weight = sorted(range(n), key=lambda i: -self.weights[i])
        self._orders: dict[tuple[str, int], tuple[int, ...]] = {}
        self.extras: dict[Any, Any] = {}  # the planner's per-pool cache (capability splits)

    def order(self, kind: str, first: int) -> tuple[int, ...]:
        """`first`, then the rest in a per-kind order; cached for small pools."""
        key = (kind, first)
        found = self._orders.get(key)
        if found is not None:
            return found
        n = self.n
        if kind == "rotate":  # round robin: the cycle from `first`
            order = (*range(first, n), *range(first))
        elif kind == "weight":  # weighted: the others by weight, heaviest first
            order = (first, *[i for i in self.by_weight if i != first])
        else:  # "pick": the others in member order
            order = (first, *range(first), *range(first + 1, n))
        if n <= _MEMO_MAX_MEMBERS:
            self._orders[key] = order
        return order


@dataclass(slots=True)
class Selection:
    """A strategy's order over the eligible members (indices, first = the choice)."""

    order: Sequence[int]
    info: dict[str, Any] = field(default_factory=dict)  # extra response fields
    scratch: Any = None  # what commit needs from select (private to the strategy)


class Strategy(Protocol):
    """Orders eligible members (pure given the state) and commits the choice."""

    name: str

    def select(self, route: Route, pool: Pool, state: RoutingState) -> Selection:
        """Order the pool's members; must not mutate `state` (it may draw from `state.rng`)."""
        ...

    def commit(self, route: Route, pool: Pool, selection: Selection, state: RoutingState) -> None:
        """Record that `pool.members[selection.order[0]]` was chosen."""
        ...


class Priority:
    """Highest priority first (the table's member order); the next only when one fails or is unavailable."""

    name = "priority"

    def select(self, route: Route, pool: Pool, state: RoutingState) -> Selection:
        """Keep the member order."""
        return Selection(pool.identity)

    def commit(self, route: Route, pool: Pool, selection: Selection, state: RoutingState) -> None:
        """Nothing to remember."""


class RoundRobin:
    """Cycle through the members in order, one cursor per route; unavailable members are skipped."""

    name = "round_robin"

    def select(self, route: Route, pool: Pool, state: RoutingState) -> Selection:
        """Start at the first eligible member after the last one chosen."""
        last = state.rr_last.get(route.key)
        first = 0
        if last is not None:
            first = bisect_left(pool.positions, route.positions.get(last, -1) + 1)
            if first == pool.n:  # past the end: wrap around
                first = 0
        return Selection(pool.order("rotate", first))

    def commit(self, route: Route, pool: Pool, selection: Selection, state: RoutingState) -> None:
        """Move the cursor to the chosen member."""
        state.rr_last[route.key] = pool.keys[selection.order[0]]


class RandomChoice:
    """Uniform among the eligible members (from the injected `state.rng`)."""

    name = "random"

    def select(self, route: Route, pool: Pool, state: RoutingState) -> Selection:
        """Draw one; the others follow in member order as fallbacks."""
        return Selection(pool.order("pick", state.rng.randrange(pool.n)))

    def commit(self, route: Route, pool: Pool, selection: Selection, state: RoutingState) -> None:
        """Nothing to remember."""


class Weighted:
    """Smooth weighted round robin (nginx) on integer weights: the split is exact in every window."""

    name = "weighted"

    def select(self, route: Route, pool: Pool, state: RoutingState) -> Selection:
        """Add each weight to its current value; the largest wins (ties: member order)."""
        current = state.wrr_current.get(route.key)
        if current:
            tentative = list(map(add, map(current.get, pool.keys, pool.zeros), pool.weights))
        else:
            tentative = pool.weights.copy()
        best = tentative.index(max(tentative))  # first of equals wins
        return Selection(pool.order("weight", best), scratch=tentative)

    def commit(self, route: Route, pool: Pool, selection: Selection, state: RoutingState) -> None:
        """Store the new current weights and take the total off the winner."""
        current = state.wrr_of(route.key)
        current.update(zip(pool.keys, selection.scratch))
        current[pool.keys[selection.order[0]]] -= pool.total


class LeastUsed:
    """Fewest requests so far; ties by higher trust_level, lower cost, then member order.

    Late-joiner rule: a member that was not eligible at the route's previous decision (new after a
    reload, back from a cooldown) counts as at least the lowest count among its peers, so it is
    not flooded with the requests it "missed".
    """

    name = "least_used"

    def select(self, route: Route, pool: Pool, state: RoutingState) -> Selection:
        """Order by effective usage count."""
        counts = state.usage.get(route.key)
        keys = pool.keys
        usage = list(map(counts.get, keys, pool.zeros)) if counts else pool.zeros.copy()
        bumped = False
        seen = state.usage_seen.get(route.key)
        # the same pool (same members list object) as last time: nobody joined
        if seen is not None and seen[0] is not pool.members:
            known = seen[1]
            peers = [u for k, u in zip(keys, usage, strict=True) if k in known]
            if peers and len(peers) < len(usage):
                floor = min(peers)
                bumped = True
                usage = [
                    u if k in known or u >= floor else floor
                    for k, u in zip(keys, usage, strict=True)
                ]
        # tie_order is sorted by the tie-break; a stable sort by usage keeps it among equals
        order = sorted(pool.tie_order, key=usage.__getitem__)
        models = pool.models
        info = {
            "_usage_at_selection": usage[order[0]],
            "_model_alternatives": [
                {"model": models[i], "usage": usage[i]} for i in order[1:]
            ],
        }
        return Selection(order, info, scratch=(usage, bumped))

    def commit(self, route: Route, pool: Pool, selection: Selection, state: RoutingState) -> None:
        """Store the effective counts, count the chosen one, remember who was eligible."""
        usage, bumped = selection.scratch
        counts = state.usage.get(route.key)
        if counts is None:
            counts = state.usage[route.key] = {}
        if bumped:
            counts.update(zip(pool.keys, usage))
        chosen = pool.keys[selection.order[0]]
        counts[chosen] = counts.get(chosen, 0) + 1
        seen = state.usage_seen.get(route.key)
        if seen is None or seen[0] is not pool.members:
            state.usage_seen[route.key] = (pool.members, pool.keyset)


class CostOptimized:
    """Cheapest first by input_per_mtok + output_per_mtok; ties by member order."""

    name = "cost_optimized"

    def select(self, route: Route, pool: Pool, state: RoutingState) -> Selection:
        """The pool's cost order (computed once per pool)."""
        return Selection(pool.cost_order)

    def commit(self, route: Route, pool: Pool, selection: Selection, state: RoutingState) -> None:
        """Nothing to remember."""


class LatencyOptimized:
    """Lowest moving-average upstream latency first; members not yet measured are tried first."""

    name = "latency_optimized"

    def select(self, route: Route, pool: Pool, state: RoutingState) -> Selection:
        """Unmeasured (member order), then measured by moving average."""
        # unmeasured members sort as -1 s: first, in member order (the sort is stable)
        keys = list(map(state.latency.get, pool.model_ids, pool.minus_ones))
        return Selection(sorted(pool.identity, key=keys.__getitem__))

    def commit(self, route: Route, pool: Pool, selection: Selection, state: RoutingState) -> None:
        """Latency is recorded when the upstream answers, not here."""


STRATEGIES: dict[str, Strategy] = {
    "priority": Priority(),
    "fallback": Priority(),  # an alias; `_routing_strategy` still echoes "fallback"
    "round_robin": RoundRobin(),
    "random": RandomChoice(),
    "weighted": Weighted(),
    "least_used": LeastUsed(),
    "cost_optimized": CostOptimized(),
    "latency_optimized": LatencyOptimized(),
}


def get_strategy(name: str) -> Strategy:
    """The strategy registered under `name` (KeyError for an unknown one)."""
    return STRATEGIES[name]
