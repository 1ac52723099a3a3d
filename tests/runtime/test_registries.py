"""One home per rule: the registries derive from the table's lists, and a peek changes nothing."""

from __future__ import annotations

import copy
import random
from typing import Any

from conftest import ENV, FakeClock, make_table

from routectl.review.explain import explain_model
from routectl.review.shares import SPLIT_STRATEGIES
from routectl.runtime.dialects import DIALECTS
from routectl.runtime.index import TableIndex
from routectl.runtime.plan import RequestFacts, plan_request
from routectl.runtime.resolve import resolve
from routectl.runtime.state import RoutingState
from routectl.runtime.strategies import STRATEGIES
from routectl.table import API_NAMES, STRATEGY_NAMES


def test_the_strategy_registry_has_exactly_the_table_s_strategy_names() -> None:
    assert sorted(STRATEGIES) == sorted(STRATEGY_NAMES)
    for name, strategy in STRATEGIES.items():
        # `fallback` is the one alias: the priority strategy under another name
        assert strategy.name == ("priority" if name == "fallback" else name)
    assert {n for n, s in STRATEGIES.items() if s.spreads} == SPLIT_STRATEGIES
    assert {"weighted", "round_robin", "random", "least_used"} == SPLIT_STRATEGIES


def test_the_dialect_registry_has_exactly_the_table_s_api_names() -> None:
    assert sorted(DIALECTS) == sorted(API_NAMES)
    for name, dialect in DIALECTS.items():
        assert dialect.name == name


def _snapshot(state: RoutingState) -> dict[str, Any]:
    """Every attribute of the state: values deep-copied, caches by their keys and identities."""
    out: dict[str, Any] = {}
    for name, value in vars(state).items():
        if name in ("prepared", "least_used_views"):
            out[name] = {k: id(v) for k, v in value.items()}
        elif name == "rng":
            out[name] = value.getstate()
        elif name == "clock":
            out[name] = value
        else:
            out[name] = copy.deepcopy(value)
    return out


COLLECTIONS = """
  lu:
    scope: system
    strategy: least_used
    members: [{model: fake/m1}, {model: fake/m2}, {model: fake/m3}]
  wt:
    scope: system
    strategy: weighted
    members: [{model: fake/m1, weight: 0.7}, {model: fake/m2, weight: 0.3}]
  rnd:
    scope: system
    strategy: random
    members: [{model: fake/m1}, {model: fake/m2}]
"""


def test_a_peek_leaves_the_state_exactly_as_it_was() -> None:
    table = make_table(9, collections=COLLECTIONS)
    index = TableIndex(table)
    clock = FakeClock()
    state = RoutingState(clock=clock, rng=random.Random(3))
    state.configure(table, ENV)
    carol = index.callers["carol"]
    for name in ("collection/lu", "collection/wt", "collection/rnd", "fake/m1"):
        route = resolve(index, carol, name).route
        for _ in range(5):
            plan_request(index, state, carol, route, RequestFacts())
    # a cooldown that has expired by now: a committing plan would prune it, a peek must not
    state.record_rate_limit("platform-fake", "fake/m2", 5, clock())
    state.record_failure("platform-fake", "fake/m3", clock())
    clock.t += 10
    before = _snapshot(state)
    for name in ("collection/lu", "collection/wt", "collection/rnd", "fake/m1", "fake/m2"):
        for facts in (RequestFacts(), RequestFacts(needs_tools=True, prompt_tokens=60_000)):
            explain_model(index, state, carol, name, facts)
            explain_model(index, state, carol, name, facts)
    assert _snapshot(state) == before
    assert ("platform-fake", "fake/m2") in state.cooldowns  # still there: nothing pruned
    # the same plans with commit=True do change it (the snapshot can see a change)
    route = resolve(index, carol, "collection/lu").route
    plan_request(index, state, carol, route, RequestFacts())
    assert _snapshot(state) != before
