"""Session affinity: weighted rendezvous hashing, measured over 10,000 keys with the real planner."""

from __future__ import annotations

import copy
import random
from collections import Counter
from typing import Any

import pytest
from conftest import ENV, FakeClock, make_table
from multidict import CIMultiDict

from routectl.runtime.affinity import affinity_key, hash_text, key_hash, rendezvous_order
from routectl.runtime.index import TableIndex
from routectl.runtime.plan import RequestFacts, plan_request
from routectl.runtime.resolve import resolve
from routectl.runtime.state import RoutingState
from routectl.runtime.strategies import STRATEGIES
from routectl.table import RoutingTable

KEYS = [f"session-{i}" for i in range(10_000)]
# five members, unequal weights (normalized: .35 .25 .2 .15 .05)
FIVE = [("fake/m1", 0.7), ("fake/m2", 0.5), ("fake/m3", 0.4), ("echo/e1", 0.3), ("echo/e2", 0.1)]


def _collection(strategy: str, members: list[tuple[str, float]], name: str = "sticky") -> str:
    rows = "\n".join(f"      - {{model: {m}, weight: {w}}}" for m, w in members)
    return f"""
  {name}:
    scope: system
    strategy: {strategy}
    affinity: {{key: "header:x-session-id"}}
    members:
{rows}
"""


def _setup(table: RoutingTable) -> tuple[TableIndex, RoutingState, FakeClock]:
    clock = FakeClock()
    state = RoutingState(clock=clock, rng=random.Random(1))
    state.configure(table, ENV)
    return TableIndex(table), state, clock


def _assign(
    table: RoutingTable, keys: list[str], state: RoutingState | None = None, name: str = "sticky"
) -> dict[str, str]:
    index, fresh, _ = _setup(table)
    state = state or fresh
    carol = index.callers["carol"]
    route = resolve(index, carol, f"collection/{name}").route
    out = {}
    for key in keys:
        facts = RequestFacts(affinity_hash=key_hash(key))
        out[key] = plan_request(index, state, carol, route, facts).candidates[0].model_id
    return out


def test_shares_over_10000_keys_match_the_weights_within_2_percent() -> None:
    table = make_table(collections=_collection("round_robin", FIVE))
    counts = Counter(_assign(table, KEYS).values())
    total = sum(w for _, w in FIVE)
    for model, weight in FIVE:
        share = counts[model] / len(KEYS)
        assert abs(share - weight / total) < 0.02, (model, share, weight / total)


def test_removing_one_of_five_members_moves_only_its_keys() -> None:
    before = _assign(make_table(collections=_collection("round_robin", FIVE)), KEYS)
    four = [m for m in FIVE if m[0] != "fake/m3"]
    after = _assign(make_table(collections=_collection("round_robin", four)), KEYS)
    moved = [k for k in KEYS if before[k] != after[k]]
    # exactly the keys the removed member had, and nothing else
    assert set(moved) == {k for k in KEYS if before[k] == "fake/m3"}
    share = len(moved) / len(KEYS)
    print(f"removing fake/m3 (weight share 0.20) moved {share:.2%} of 10,000 keys")
    assert abs(share - 0.4 / 2.0) < 0.02


def test_a_cooled_down_member_s_keys_go_to_their_second_choice_and_come_back() -> None:
    table = make_table(collections=_collection("weighted", FIVE))
    index, state, clock = _setup(table)
    keys = KEYS[:2000]
    normal = _assign(table, keys, state)
    mine = [k for k in keys if normal[k] == "fake/m2"]
    assert len(mine) > 300
    # every connection carol may use for fake/m2 rate-limited for 60 s
    for conn in index.connections_for(index.callers["carol"], "fake/m2", None):
        state.record_rate_limit(conn.id, "fake/m2", 60, clock())
    cooled = _assign(table, keys, state)
    models = [m for m, _ in FIVE]
    weights = [w for _, w in FIVE]
    for key in keys:
        if key in mine:
            second = models[rendezvous_order(key_hash(key), models, weights)[1]]
            assert cooled[key] == second
        else:
            assert cooled[key] == normal[key]  # nobody else moves
    clock.t += 61
    assert _assign(table, keys, state) == normal  # they come back when it recovers


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_affinity_is_the_first_candidate_and_the_strategy_s_order_follows(strategy: str) -> None:
    members = FIVE[:3]
    table = make_table(collections=_collection(strategy, members))
    index, state, _ = _setup(table)
    carol = index.callers["carol"]
    route = resolve(index, carol, "collection/sticky").route
    drawn = state.rng.getstate()  # random: the affinity plan draws the same order again
    without = plan_request(index, state, carol, route, RequestFacts(), commit=False)
    state.rng.setstate(drawn)
    before = copy.deepcopy({k: v for k, v in vars(state).items() if k in _STRATEGY_STATE})
    h = key_hash("conversation-42")
    plan = plan_request(index, state, carol, route, RequestFacts(affinity_hash=h))
    chosen = [m for m, _ in members][
        rendezvous_order(h, [m for m, _ in members], [0.7, 0.5, 0.4])[0]
    ]
    got = [c.model_id for c in plan.candidates]
    assert got[0] == chosen
    strategy_order = [c.model_id for c in without.candidates]
    assert got[1:] == [m for m in strategy_order if m != chosen][: len(got) - 1]
    assert plan.info["_affinity_key_hash"] == hash_text(h)
    # the strategy did not choose: its cursors and counters did not move
    assert {k: v for k, v in vars(state).items() if k in _STRATEGY_STATE} == before


_STRATEGY_STATE = ("rr_last", "usage", "usage_seen")


def test_least_used_fields_describe_the_member_that_affinity_chose() -> None:
    table = make_table(collections=_collection("least_used", FIVE[:3]))
    index, state, _ = _setup(table)
    carol = index.callers["carol"]
    route = resolve(index, carol, "collection/sticky").route
    for _ in range(4):  # m2 (highest trust) first: counts m2 2, m1 1, m3 1
        plan_request(index, state, carol, route, RequestFacts())
    key = next(k for k in KEYS if _assign(table, [k])[k] == "fake/m3")
    plan = plan_request(index, state, carol, route, RequestFacts(affinity_hash=key_hash(key)))
    assert plan.candidates[0].model_id == "fake/m3"
    assert plan.info["_usage_at_selection"] == 1
    others = {a["model"]: a["usage"] for a in plan.info["_model_alternatives"]}
    assert others == {"fake/m1": 1, "fake/m2": 2}


def test_a_peek_with_affinity_leaves_the_state_exactly_as_it_was() -> None:
    table = make_table(collections=_collection("round_robin", FIVE))
    index, state, _ = _setup(table)
    carol = index.callers["carol"]
    route = resolve(index, carol, "collection/sticky").route
    plan_request(index, state, carol, route, RequestFacts())
    snapshot = _state(state)
    for key in KEYS[:50]:
        facts = RequestFacts(affinity_hash=key_hash(key))
        plan_request(index, state, carol, route, facts, commit=False)
    assert _state(state) == snapshot


def _state(state: RoutingState) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in vars(state).items():
        if name in ("prepared", "least_used_views"):
            out[name] = {k: id(v) for k, v in value.items()}
        elif name == "rng":
            out[name] = value.getstate()
        elif name != "clock":
            out[name] = copy.deepcopy(value)
    return out


def test_the_key_comes_from_a_header_the_caller_or_the_body_s_metadata() -> None:
    headers = CIMultiDict({"X-Session-Id": "abc"})  # as aiohttp's: any case
    body: dict[str, Any] = {"metadata": {"user_id": "u-7", "n": 12}}
    assert affinity_key("header:x-session-id", headers, "alice", body) == "abc"
    assert affinity_key("header:x-other", headers, "alice", body) is None
    assert affinity_key("user", headers, "alice", body) == "alice"
    assert affinity_key("metadata.user_id", headers, "alice", body) == "u-7"
    assert affinity_key("metadata.n", headers, "alice", body) == "12"
    assert affinity_key("metadata.missing", headers, "alice", body) is None
    assert affinity_key("metadata.user_id", headers, "alice", {"metadata": "x"}) is None
    assert affinity_key("header:x-session-id", CIMultiDict({"x-session-id": ""}), "a", body) is None
    # the same key, the same hash, in every process (no PYTHONHASHSEED): a fixed value
    assert hash_text(key_hash("session-1")) == hash_text(key_hash("session-1"))
    assert len(hash_text(key_hash("session-1"))) == 16
