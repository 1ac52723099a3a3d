"""Pool: the eligible members of one decision and the per-member arrays strategies read.

Built once per eligible set and reused by every decision over that set, so one decision is a few
C-level list operations rather than a loop over member objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from routectl.runtime.routes import RouteMember

if TYPE_CHECKING:
    from routectl.runtime.strategies import LatencyView

__all__ = ["Pool", "values_of"]

# orders derived per (pool, first choice) are cached up to this size: n orders of n indices
_MEMO_MAX_MEMBERS = 64


class Pool:
    """The eligible members of one decision and the per-member arrays strategies read.

    Immutable once built: the planner caches one per eligible set, so `members` keeps its
    identity across decisions (least_used's late-joiner rule relies on that).
    """

    __slots__ = (
        "_orders",
        "by_weight",
        "cost_order",
        "identity",
        "key_index",
        "keys",
        "keyset",
        "latency_view",
        "members",
        "minus_ones",
        "model_ids",
        "n",
        "positions",
        "preferred",
        "tie_order",
        "tie_rank",
        "total",
        "weights",
        "zeros",
    )

    def __init__(self, members: list[RouteMember]) -> None:
        n = len(members)
        self.members = members
        self.n = n
        self.keys = [m.key for m in members]
        self.keyset = frozenset(self.keys)
        self.key_index = {k: i for i, k in enumerate(self.keys)}
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
        self.tie_rank = [0] * n  # member index -> place in tie_order
        for place, i in enumerate(self.tie_order):
            self.tie_rank[i] = place
        costs = [m.cost for m in members]
        self.cost_order = tuple(sorted(range(n), key=costs.__getitem__))
        self.by_weight = sorted(range(n), key=lambda i: -self.weights[i])
        self._orders: dict[tuple[str, int], tuple[int, ...]] = {}
        # memos of this pool's derived data, filled on first use:
        # wanted capabilities -> (the pool of members having them, the others); see plan.py
        self.preferred: dict[frozenset[str], tuple[Pool, tuple[RouteMember, ...]]] = {}
        self.latency_view: LatencyView | None = None  # latency_optimized's view

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


def values_of(values: Mapping[str, int], pool: Pool) -> list[int]:
    """The pool members' values in `values` (0 when absent)."""
    try:
        # every member has a value once each was chosen (least_used) or after one commit (weighted)
        return list(map(values.__getitem__, pool.keys))
    except KeyError:
        return list(map(values.get, pool.keys, pool.zeros))
