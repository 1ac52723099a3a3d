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

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from operator import add, itemgetter
from typing import Any, Protocol

from routectl.runtime.pool import Pool, values_of
from routectl.runtime.routes import Route
from routectl.runtime.state import RoutingState

__all__ = [
    "STRATEGIES",
    "LatencyView",
    "LeastUsedView",
    "Selection",
    "SmoothWeights",
    "Strategy",
]


class SmoothWeights(MutableMapping[str, int]):
    """A route's smooth-WRR current weights: a list aligned with a pool's keys, plus the others.

    Every weighted decision changes every member's value; keeping them in a list the decision
    replaces whole (instead of a dict rewritten key by key) is what makes one decision cheap.
    Reads as an ordinary mapping (reload carry-over, tests, debugging).
    """

    __slots__ = ("aligned_keys", "aligned_values", "key_positions", "rest")

    def __init__(
        self, keys: list[str], positions: dict[str, int], values: list[int], rest: dict[str, int]
    ) -> None:
        # the pool's key list (identity tells a decision it is aligned) and the values in its order
        self.aligned_keys = keys
        self.key_positions = positions  # key -> position in aligned_keys
        self.aligned_values = values
        self.rest = rest  # members outside the pool (not eligible at the last decision)

    def __getitem__(self, key: str) -> int:
        i = self.key_positions.get(key)
        return self.rest[key] if i is None else self.aligned_values[i]

    def __setitem__(self, key: str, value: int) -> None:
        i = self.key_positions.get(key)
        if i is None:
            self.rest[key] = value
        else:
            self.aligned_values[i] = value

    def __delitem__(self, key: str) -> None:
        if key in self.key_positions:  # leave the aligned form: everything goes to `rest`
            self.rest.update(zip(self.aligned_keys, self.aligned_values, strict=True))
            self.aligned_keys, self.key_positions, self.aligned_values = [], {}, []
        del self.rest[key]

    def __iter__(self) -> Iterator[str]:
        yield from self.aligned_keys
        yield from self.rest

    def __len__(self) -> int:
        return len(self.aligned_keys) + len(self.rest)

    def __repr__(self) -> str:
        return f"SmoothWeights({dict(self)!r})"


class LeastUsedView:
    """least_used's view of a route's counters for one pool: kept sorted, updated by each commit.

    `order` lists the pool's members by (count, tie-break rank), `keys` holds the matching
    `count * n + rank` numbers (so a re-insert is one C-level bisect), and `alts` the matching
    `{model, usage}` dicts; a commit moves one member, so a decision neither sorts nor builds
    dicts. The dicts are shared by the plans made while their count holds: plans are read-only.
    """

    __slots__ = ("alts", "keys", "order", "pool", "source", "values")

    def __init__(self, source: dict[str, int], pool: Pool, values: list[int]) -> None:
        self.source = source  # the state dict this mirrors (a replaced dict invalidates it)
        self.pool = pool
        self.values = values  # count per pool member (0 when never chosen)
        n, rank, models = pool.n, pool.tie_rank, pool.model_ids
        self.order = sorted(pool.tie_order, key=values.__getitem__)
        self.keys = [values[i] * n + rank[i] for i in self.order]
        self.alts = [{"model": models[i], "usage": values[i]} for i in self.order]

    def count(self, best: int, value: int) -> None:
        """Member `best`, first in `order`, now has `value` requests: move it to its place."""
        self.values[best] = value
        key = value * self.pool.n + self.pool.tie_rank[best]
        del self.order[0], self.keys[0], self.alts[0]
        at = bisect_right(self.keys, key)
        self.order.insert(at, best)
        self.keys.insert(at, key)
        self.alts.insert(at, {"model": self.pool.model_ids[best], "usage": value})


_MAX_VIEWS = 10_000  # routes keyed by client input (load balancers) must not grow this forever


class Selection:
    """A strategy's order over the eligible members (indices, first = the choice)."""

    # a plain slotted class: one is made per decision, and a dataclass __init__ costs more
    __slots__ = ("info", "order")

    def __init__(self, order: Sequence[int], info: dict[str, Any] | None = None) -> None:
        self.order = order
        self.info: dict[str, Any] = {} if info is None else info  # extra response fields

    def __repr__(self) -> str:
        return f"Selection(order={list(self.order)!r}, info={self.info!r})"


class _WeightedSelection(Selection):
    """Weighted's choice and the current weights its commit stores."""

    __slots__ = ("tentative",)

    def __init__(self, order: Sequence[int], tentative: list[int]) -> None:
        # the base's fields set here, not through super().__init__: one call less per decision
        self.order = order
        self.info = {}
        self.tentative = tentative  # every member's weight plus its current value


class _LeastUsedSelection(Selection):
    """least_used's choice and what its commit needs: the effective counts and the view used."""

    __slots__ = ("bumped", "usage", "view")

    def __init__(
        self,
        order: Sequence[int],
        info: dict[str, Any],
        usage: list[int],
        bumped: bool,
        view: LeastUsedView | None,
    ) -> None:
        self.order = order
        self.info = info
        self.usage = usage  # effective counts per pool member (late joiners raised)
        self.bumped = bumped  # some late joiner was raised to its peers' floor
        self.view = view


class Strategy(Protocol):
    """Orders eligible members (pure given the state) and commits the choice."""

    name: str
    spreads: (
        bool  # spreads traffic over its members (review's expected shares), vs. one first choice
    )

    def select(self, route: Route, pool: Pool, state: RoutingState) -> Selection:
        """Order the pool's members; must not mutate `state` (it may draw from `state.rng`)."""
        ...

    def commit(self, route: Route, pool: Pool, selection: Selection, state: RoutingState) -> None:
        """Record that `pool.members[selection.order[0]]` was chosen."""
        ...


class Priority:
    """Highest priority first (the table's member order); the next only when one fails or is unavailable."""

    name = "priority"
    spreads = False

    def select(self, route: Route, pool: Pool, state: RoutingState) -> Selection:
        """Keep the member order."""
        return Selection(pool.identity)

    def commit(self, route: Route, pool: Pool, selection: Selection, state: RoutingState) -> None:
        """Nothing to remember."""


class RoundRobin:
    """Cycle through the members in order, one cursor per route; unavailable members are skipped."""

    name = "round_robin"
    spreads = True

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
    spreads = True

    def select(self, route: Route, pool: Pool, state: RoutingState) -> Selection:
        """Draw one; the others follow in member order as fallbacks."""
        return Selection(pool.order("pick", state.rng.randrange(pool.n)))

    def commit(self, route: Route, pool: Pool, selection: Selection, state: RoutingState) -> None:
        """Nothing to remember."""


class Weighted:
    """Smooth weighted round robin (nginx) on integer weights: the split is exact in every window."""

    name = "weighted"
    spreads = True

    def select(self, route: Route, pool: Pool, state: RoutingState) -> Selection:
        """Add each weight to its current value; the largest wins (ties: member order)."""
        current = state.wrr_current.get(route.key)
        if not current:
            tentative = pool.weights.copy()
        elif type(current) is SmoothWeights and current.aligned_keys is pool.keys:
            tentative = list(map(add, current.aligned_values, pool.weights))
        else:
            tentative = list(map(add, values_of(current, pool), pool.weights))
        best = tentative.index(max(tentative))  # first of equals wins
        return _WeightedSelection(pool.order("weight", best), tentative)

    def commit(self, route: Route, pool: Pool, selection: Selection, state: RoutingState) -> None:
        """Store the new current weights and take the total off the winner."""
        # an annotation, not typing.cast: that is a Python-level call per decision
        chosen_by: _WeightedSelection = selection  # type: ignore[assignment]
        values = chosen_by.tentative  # this decision's own list
        values[selection.order[0]] -= pool.total
        current = state.wrr_current.get(route.key)
        if type(current) is SmoothWeights and current.aligned_keys is pool.keys:
            current.aligned_values = values
            return
        current = state.wrr_of(route.key)  # created on first use (bounded for lb routes)
        index = pool.key_index
        rest = {k: v for k, v in current.items() if k not in index}
        state.wrr_current[route.key] = SmoothWeights(pool.keys, index, values, rest)


class LeastUsed:
    """Fewest requests so far; ties by higher trust_level, lower cost, then member order.

    Late-joiner rule: a member that was not eligible at the route's previous decision (new after a
    reload, back from a cooldown) counts as at least the lowest count among its peers, so it is
    not flooded with the requests it "missed".
    """

    name = "least_used"
    spreads = True

    def select(self, route: Route, pool: Pool, state: RoutingState) -> Selection:
        """Order by effective usage count."""
        counts = state.usage.get(route.key)
        view = None
        if counts:  # the route's sorted counters, when they still mirror `counts` for this pool
            view = state.least_used_views.get(route.key)
            if view is not None and (view.source is not counts or view.pool is not pool):
                view = None
        if view is not None:
            usage = view.values
        elif counts:
            usage = values_of(counts, pool)
        else:
            usage = pool.zeros
        keys = pool.keys
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
        if view is not None and not bumped:
            order: Sequence[int] = tuple(view.order)  # a snapshot: the view moves on
            alternatives = view.alts[1:]
        else:
            # tie_order is sorted by the tie-break; a stable sort by usage keeps it among equals
            order = sorted(pool.tie_order, key=usage.__getitem__)
            models = pool.model_ids
            alternatives = [{"model": models[i], "usage": usage[i]} for i in order[1:]]
        info = {"_usage_at_selection": usage[order[0]], "_model_alternatives": alternatives}
        return _LeastUsedSelection(order, info, usage, bumped, view)

    def commit(self, route: Route, pool: Pool, selection: Selection, state: RoutingState) -> None:
        """Store the effective counts, count the chosen one, remember who was eligible."""
        # an annotation, not typing.cast: that is a Python-level call per decision
        chosen_by: _LeastUsedSelection = selection  # type: ignore[assignment]
        usage, bumped, view = chosen_by.usage, chosen_by.bumped, chosen_by.view
        counts = state.usage.get(route.key)
        if counts is None:
            counts = state.usage[route.key] = {}
        if bumped:
            counts.update(zip(pool.keys, usage, strict=True))
        best = selection.order[0]
        chosen = pool.keys[best]
        count = counts[chosen] = counts.get(chosen, 0) + 1
        if view is not None and not bumped:
            view.count(best, count)
        else:
            values = list(usage)  # counts of every member (0 when never chosen), and this one
            values[best] = count
            views = state.least_used_views
            if route.key not in views and len(views) >= _MAX_VIEWS:
                views.clear()
            views[route.key] = LeastUsedView(counts, pool, values)
        seen = state.usage_seen.get(route.key)
        if seen is None or seen[0] is not pool.members:
            state.usage_seen[route.key] = (pool.members, pool.keyset)


class CostOptimized:
    """Cheapest first by input_per_mtok + output_per_mtok; ties by member order."""

    name = "cost_optimized"
    spreads = False

    def select(self, route: Route, pool: Pool, state: RoutingState) -> Selection:
        """The pool's cost order (computed once per pool)."""
        return Selection(pool.cost_order)

    def commit(self, route: Route, pool: Pool, selection: Selection, state: RoutingState) -> None:
        """Nothing to remember."""


class LatencyView:
    """latency_optimized's view of one pool: who is measured, and the last order it computed."""

    __slots__ = ("head", "measured", "order", "read", "unmeasured_ids", "values")

    def __init__(self, pool: Pool, latency: dict[str, float]) -> None:
        ids = pool.model_ids
        self.measured = [i for i in range(pool.n) if ids[i] in latency]
        self.head = tuple(i for i in range(pool.n) if ids[i] not in latency)  # unmeasured first
        self.unmeasured_ids = [ids[i] for i in self.head]
        measured_ids = [ids[i] for i in self.measured]
        # one C call reads every measured average (a 1-key itemgetter would not return a tuple)
        if len(measured_ids) > 1:
            self.read: Callable[[dict[str, float]], tuple[float, ...]] = itemgetter(*measured_ids)
        elif measured_ids:
            only = measured_ids[0]
            self.read = lambda latency: (latency[only],)
        else:
            self.read = lambda latency: ()
        self.values: tuple[float, ...] | None = None
        self.order: tuple[int, ...] = ()


class LatencyOptimized:
    """Lowest moving-average upstream latency first; members not yet measured are tried first."""

    name = "latency_optimized"
    spreads = False

    def select(self, route: Route, pool: Pool, state: RoutingState) -> Selection:
        """Unmeasured (member order), then measured by moving average (ties: member order)."""
        latency = state.latency
        view = pool.latency_view
        if view is None or any(map(latency.__contains__, view.unmeasured_ids)):
            view = pool.latency_view = LatencyView(pool, latency)
        try:
            values = view.read(latency)
        except KeyError:  # a reload forgot a model's average: it is unmeasured again
            view = pool.latency_view = LatencyView(pool, latency)
            values = view.read(latency)
        if values != view.values:  # re-sort only when some average moved
            by_latency = sorted(range(len(values)), key=values.__getitem__)  # stable
            view.order = (*view.head, *map(view.measured.__getitem__, by_latency))
            view.values = values
        return Selection(view.order)

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
