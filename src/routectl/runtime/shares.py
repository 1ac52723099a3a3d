"""Expected steady-state traffic share of each member of a collection, from weights and strategy.

Pure; the review tools (diff, simulate) and the dashboard's configured shares both use it.
"""

from __future__ import annotations

from typing import Literal

from routectl.runtime.strategies import STRATEGIES
from routectl.table import Collection, Member, RoutingTable

__all__ = ["SPLIT_STRATEGIES", "Basis", "expected_shares", "member_key"]

Basis = Literal["weights", "equal", "first_choice", "none"]

# strategies that spread traffic; the others send everything to one first choice (each runtime
# strategy says which it does)
SPLIT_STRATEGIES = frozenset(name for name, s in STRATEGIES.items() if s.spreads)


def member_key(collection: Collection, member: Member) -> str:
    """A member's name as written, made unique when a model is listed twice."""
    same = [m for m in collection.members if m.model == member.model]
    if len(same) == 1:
        return member.model
    return f"{member.model}#{same.index(member) + 1}"


def _first_choice(table: RoutingTable, collection: Collection, active: list[Member]) -> Member:
    if collection.strategy == "cost_optimized":
        # cheapest first; table order (priority, declared) breaks ties, as the runtime does
        def cost(m: Member) -> float:
            model = table.models.get(m.model_id)
            return model.cost if model is not None else float("inf")

        return min(active, key=lambda m: (cost(m), active.index(m)))
    # priority/fallback walk table order; latency_optimized tries unmeasured members in that order
    return active[0]


def expected_shares(table: RoutingTable, collection: Collection) -> tuple[dict[str, float], Basis]:
    """Share (0..1) per member key, assuming every active member is eligible and healthy."""
    active = [m for m in collection.members if m.active]
    shares = {member_key(collection, m): 0.0 for m in collection.members}
    if not active:
        return shares, "none"
    if collection.strategy == "weighted":
        total = sum(m.weight for m in active)
        for m in active:
            shares[member_key(collection, m)] = m.weight / total
        return shares, "weights"
    if collection.strategy in SPLIT_STRATEGIES:
        for m in active:
            shares[member_key(collection, m)] = 1.0 / len(active)
        return shares, "equal"
    shares[member_key(collection, _first_choice(table, collection, active))] = 1.0
    return shares, "first_choice"
