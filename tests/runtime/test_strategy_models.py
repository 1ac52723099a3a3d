"""The incremental strategy structures against naive reference models, over long random runs.

weighted keeps its current weights in a list-backed mapping, least_used keeps its members sorted
and re-inserts the chosen one, latency_optimized re-sorts only when an average moved: each must
decide exactly what a from-scratch computation over the same state decides.
"""

from __future__ import annotations

import random

from conftest import ENV, FakeClock, make_table

from routectl.runtime.auth import Caller
from routectl.runtime.index import TableIndex
from routectl.runtime.plan import RequestFacts, plan_request
from routectl.runtime.resolve import resolve
from routectl.runtime.state import RoutingState

MODELS = "".join(
    f"  echo/x{i}: {{trust_level: {40 + i % 3}, pricing: {{input_per_mtok: {i % 4}}}}}\n"
    for i in range(8)
)
CONNS = (
    "  - {id: px, owner: platform, provider: echo, models: ["
    + ", ".join(f"echo/x{i}" for i in range(8))
    + "]}\n"
)


def world(
    strategy: str, weights: list[float]
) -> tuple[RoutingState, TableIndex, Caller, FakeClock]:
    members = ", ".join(f"{{model: echo/x{i}, weight: {w}}}" for i, w in enumerate(weights))
    table = make_table(
        models=MODELS,
        connections=CONNS,
        collections=f"  c:\n    scope: system\n    strategy: {strategy}\n    members: [{members}]\n",
    )
    clock = FakeClock()
    state = RoutingState(clock=clock, rng=random.Random(7))
    state.configure(table, ENV)
    index = TableIndex(table)
    return state, index, index.callers["carol"], clock


def test_weighted_matches_naive_smooth_wrr_through_cooldowns() -> None:
    weights = [0.3, 0.1, 0.25, 0.05, 0.15, 0.05, 0.07, 0.03]
    state, index, carol, clock = world("weighted", weights)
    route = resolve(index, carol, "collection/c").route
    ints = {m.key: m.int_weight for m in route.members}
    current: dict[str, int] = {}
    rnd = random.Random(3)
    for step in range(3000):
        if step % 97 == 0:  # some member cools down for a while: the eligible set changes
            state.record_rate_limit("px", f"echo/x{rnd.randrange(8)}", rnd.choice([1, 5]), clock())
        clock.t += 0.25
        plan = plan_request(index, state, carol, route, RequestFacts())
        eligible = [
            m.key for m in route.members if state.cooldown_of("px", m.model_id, clock()) is None
        ]
        tentative = {k: current.get(k, 0) + ints[k] for k in eligible}
        best = max(eligible, key=lambda k: tentative[k])  # first of equals, in member order
        current.update(tentative)
        current[best] -= sum(ints[k] for k in eligible)
        assert plan.candidates[0].member.key == best
        assert dict(state.wrr_current[route.key]) == current


def test_least_used_matches_a_full_sort_every_time() -> None:
    state, index, carol, clock = world("least_used", [0.5] * 8)
    route = resolve(index, carol, "collection/c").route
    rank = {m.key: (-m.trust_level, m.cost, m.position) for m in route.members}
    rnd = random.Random(5)
    for step in range(2000):
        if step % 150 == 0:
            state.record_rate_limit("px", f"echo/x{rnd.randrange(8)}", 10, clock())
        clock.t += 0.1
        peek = rnd.random() < 0.2
        facts = RequestFacts(needs_tools=rnd.random() < 0.1)
        plan = plan_request(index, state, carol, route, facts, commit=not peek)
        usage = plan.info["_usage_at_selection"]
        alternatives = plan.info["_model_alternatives"]
        # the plan's own numbers, re-sorted from scratch, give the same order
        counts = {plan.eligible[0].key: usage} | {a["model"]: a["usage"] for a in alternatives}
        expected = sorted(counts, key=lambda k: (counts[k], rank[k]))
        assert [m.key for m in plan.eligible] == expected
        if not peek and not facts.needs_tools:
            live = state.usage[route.key]
            assert counts[plan.eligible[0].key] + 1 == live[plan.eligible[0].key]


def test_latency_optimized_follows_every_new_sample() -> None:
    state, index, carol, _ = world("latency_optimized", [0.5] * 8)
    route = resolve(index, carol, "collection/c").route
    rnd = random.Random(9)
    for _ in range(500):
        if rnd.random() < 0.5:
            state.record_latency("px", f"echo/x{rnd.randrange(8)}", rnd.random())
        plan = plan_request(index, state, carol, route, RequestFacts())
        keys = {m.key: state.latency.get(m.model_id, -1.0) for m in route.members}
        expected = sorted(keys, key=lambda k: keys[k])  # stable: member order among equals
        assert [m.key for m in plan.eligible] == expected
