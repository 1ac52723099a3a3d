"""Routing strategies: one small class per strategy behind one Protocol, looked up by name.

A strategy orders the eligible members of a route (`select`, no mutation) and then records its
choice (`commit`, advances cursors and counters). Keeping the two apart lets `routectl explain`
show a decision without disturbing the counters of a running process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from routectl.runtime.resolve import Route, RouteMember
from routectl.runtime.state import RoutingState

__all__ = [
    "STRATEGIES",
    "Selection",
    "Strategy",
    "get_strategy",
]


@dataclass(slots=True)
class Selection:
    """A strategy's order over the eligible members (indices, first = the choice)."""

    order: list[int]
    info: dict[str, Any] = field(default_factory=dict)  # extra response fields
    scratch: Any = None  # what commit needs from select (private to the strategy)


class Strategy(Protocol):
    """Orders eligible members (pure given the state) and commits the choice."""

    name: str

    def select(
        self, route: Route, eligible: Sequence[RouteMember], state: RoutingState
    ) -> Selection:
        """Order the eligible members; must not mutate `state` (it may draw from `state.rng`)."""
        ...

    def commit(
        self,
        route: Route,
        eligible: Sequence[RouteMember],
        selection: Selection,
        state: RoutingState,
    ) -> None:
        """Record that `eligible[selection.order[0]]` was chosen."""
        ...


class Priority:
    """Highest priority first (the table's member order); the next only when one fails or is unavailable."""

    name = "priority"

    def select(
        self, route: Route, eligible: Sequence[RouteMember], state: RoutingState
    ) -> Selection:
        """Keep the member order."""
        return Selection(list(range(len(eligible))))

    def commit(
        self,
        route: Route,
        eligible: Sequence[RouteMember],
        selection: Selection,
        state: RoutingState,
    ) -> None:
        """Nothing to remember."""


class RoundRobin:
    """Cycle through the members in order, one cursor per route; unavailable members are skipped."""

    name = "round_robin"

    def select(
        self, route: Route, eligible: Sequence[RouteMember], state: RoutingState
    ) -> Selection:
        """Start at the first eligible member after the last one chosen."""
        last = state.rr_last.get(route.key)
        start = route.positions.get(last, -1) + 1 if last is not None else 0
        first = 0
        for i, m in enumerate(eligible):
            if m.position >= start:
                first = i
                break
        n = len(eligible)
        return Selection([*range(first, n), *range(first)])

    def commit(
        self,
        route: Route,
        eligible: Sequence[RouteMember],
        selection: Selection,
        state: RoutingState,
    ) -> None:
        """Move the cursor to the chosen member."""
        state.rr_last[route.key] = eligible[selection.order[0]].key


class RandomChoice:
    """Uniform among the eligible members (from the injected `state.rng`)."""

    name = "random"

    def select(
        self, route: Route, eligible: Sequence[RouteMember], state: RoutingState
    ) -> Selection:
        """Draw one; the others follow in member order as fallbacks."""
        n = len(eligible)
        pick = state.rng.randrange(n)
        return Selection([pick, *range(pick), *range(pick + 1, n)])

    def commit(
        self,
        route: Route,
        eligible: Sequence[RouteMember],
        selection: Selection,
        state: RoutingState,
    ) -> None:
        """Nothing to remember."""


class Weighted:
    """Smooth weighted round robin (nginx) on integer weights: the split is exact in every window."""

    name = "weighted"

    def select(
        self, route: Route, eligible: Sequence[RouteMember], state: RoutingState
    ) -> Selection:
        """Add each weight to its current value; the largest wins (ties: member order)."""
        get = (state.wrr_current.get(route.key) or {}).get
        tentative = [get(m.key, 0) + m.int_weight for m in eligible]
        best = max(range(len(eligible)), key=tentative.__getitem__)  # first of equals wins
        total = sum(m.int_weight for m in eligible)
        weights = [-m.int_weight for m in eligible]
        rest = sorted(range(len(eligible)), key=weights.__getitem__)  # stable: member order
        rest.remove(best)
        return Selection([best, *rest], scratch=(tentative, total))

    def commit(
        self,
        route: Route,
        eligible: Sequence[RouteMember],
        selection: Selection,
        state: RoutingState,
    ) -> None:
        """Store the new current weights and take the total off the winner."""
        tentative, total = selection.scratch
        current = state.wrr_of(route.key)
        current.update(zip([m.key for m in eligible], tentative, strict=True))
        current[eligible[selection.order[0]].key] -= total


class LeastUsed:
    """Fewest requests so far; ties by higher trust_level, lower cost, then member order.

    Late-joiner rule: a member that was not eligible at the route's previous decision (new after a
    reload, back from a cooldown) counts as at least the lowest count among its peers, so it is
    not flooded with the requests it "missed".
    """

    name = "least_used"

    def select(
        self, route: Route, eligible: Sequence[RouteMember], state: RoutingState
    ) -> Selection:
        """Order by effective usage count."""
        counts = state.usage.get(route.key) or {}
        seen = state.usage_seen.get(route.key)
        usage = [counts.get(m.key, 0) for m in eligible]
        bumped = False
        if seen is not None and (seen[0] is not eligible):
            keys = seen[1]
            peers = [u for m, u in zip(eligible, usage, strict=True) if m.key in keys]
            if peers and len(peers) < len(usage):
                floor = min(peers)
                bumped = True
                usage = [
                    u if m.key in keys else max(u, floor)
                    for m, u in zip(eligible, usage, strict=True)
                ]
        # two stable sorts: by the tie-break, then by usage (equal ties keep member order)
        ties = [m.tie for m in eligible]
        order = sorted(range(len(eligible)), key=ties.__getitem__)
        order.sort(key=usage.__getitem__)
        info = {
            "_usage_at_selection": usage[order[0]],
            "_model_alternatives": [
                {"model": eligible[i].model, "usage": usage[i]} for i in order[1:]
            ],
        }
        return Selection(order, info, scratch=(usage, bumped))

    def commit(
        self,
        route: Route,
        eligible: Sequence[RouteMember],
        selection: Selection,
        state: RoutingState,
    ) -> None:
        """Store the effective counts, count the chosen one, remember who was eligible."""
        usage, bumped = selection.scratch
        counts = state.usage.get(route.key)
        if counts is None:
            counts = state.usage[route.key] = {}
        if bumped:
            for m, u in zip(eligible, usage, strict=True):
                counts[m.key] = u
        chosen = eligible[selection.order[0]].key
        counts[chosen] = counts.get(chosen, 0) + 1
        seen = state.usage_seen.get(route.key)
        # the same eligible list object (the planner's precomputed one) means the same members
        if seen is None or seen[0] is not eligible:
            state.usage_seen[route.key] = (eligible, frozenset(m.key for m in eligible))


class CostOptimized:
    """Cheapest first by input_per_mtok + output_per_mtok; ties by member order."""

    name = "cost_optimized"

    def select(
        self, route: Route, eligible: Sequence[RouteMember], state: RoutingState
    ) -> Selection:
        """Sort by cost."""
        costs = [m.cost for m in eligible]
        return Selection(sorted(range(len(eligible)), key=costs.__getitem__))  # stable

    def commit(
        self,
        route: Route,
        eligible: Sequence[RouteMember],
        selection: Selection,
        state: RoutingState,
    ) -> None:
        """Nothing to remember."""


class LatencyOptimized:
    """Lowest moving-average upstream latency first; members not yet measured are tried first."""

    name = "latency_optimized"

    def select(
        self, route: Route, eligible: Sequence[RouteMember], state: RoutingState
    ) -> Selection:
        """Unmeasured (member order), then measured by moving average."""
        # unmeasured members sort as -1 s: first, in member order (the sort is stable)
        get = state.latency.get
        keys = [get(m.model_id, -1.0) for m in eligible]
        return Selection(sorted(range(len(eligible)), key=keys.__getitem__))

    def commit(
        self,
        route: Route,
        eligible: Sequence[RouteMember],
        selection: Selection,
        state: RoutingState,
    ) -> None:
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
