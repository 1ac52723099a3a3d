"""Strategies and plan_request, pure: injected rng and clock, no I/O."""

from __future__ import annotations

import copy
import random
from collections import Counter

import pytest
from conftest import ENV, SMALL_CONNECTION, SMALL_MODEL, FakeClock, make_table

from routectl.runtime.auth import Caller
from routectl.runtime.index import TableIndex
from routectl.runtime.plan import RequestFacts, RoutePlan, plan_request
from routectl.runtime.resolve import resolve
from routectl.runtime.state import RoutingState
from routectl.table import RoutingTable


def collection(name: str, strategy: str, members: str) -> str:
    return f"  {name}:\n    scope: system\n    strategy: {strategy}\n    members: {members}\n"


ABC = "[{model: fake/m1}, {model: fake/m2}, {model: fake/m3}]"


class World:
    def __init__(self, collections: str, seed: int = 1, **parts: str) -> None:
        self.table: RoutingTable = make_table(9, collections=collections, **parts)
        self.clock = FakeClock()
        self.state = RoutingState(clock=self.clock, rng=random.Random(seed))
        self.state.configure(self.table, ENV)
        self.index = TableIndex(self.table)
        self.carol: Caller = self.index.callers["carol"]

    def plan(
        self, name: str, facts: RequestFacts | None = None, commit: bool = True, who: str = "carol"
    ) -> RoutePlan:
        caller = self.index.callers[who]
        route = resolve(self.index, caller, name).route
        return plan_request(
            self.index, self.state, caller, route, facts or RequestFacts(), commit=commit
        )

    def pick(self, name: str, **kw: object) -> str:
        plan = self.plan(name, **kw)  # type: ignore[arg-type]
        return plan.candidates[0].model_id

    def picks(self, name: str, n: int) -> list[str]:
        return [self.pick(name) for _ in range(n)]

    def cool(self, conn: str, model: str, seconds: float = 10) -> None:
        self.state.record_rate_limit(conn, model, seconds, self.clock())


def short(ids: list[str]) -> list[str]:
    return [i.split("/")[1] for i in ids]


def test_round_robin_cycles_and_skips_unavailable() -> None:
    w = World(collection("rr", "round_robin", ABC))
    assert short(w.picks("collection/rr", 4)) == ["m1", "m2", "m3", "m1"]
    w.cool("platform-fake", "fake/m2")  # m2 is now unavailable for carol
    assert short(w.picks("collection/rr", 4)) == ["m3", "m1", "m3", "m1"]
    w.clock.t += 11  # the cooldown ends: m2 is back in its place in the cycle
    assert short(w.picks("collection/rr", 3)) == ["m2", "m3", "m1"]


def test_round_robin_fallback_order_follows_the_cycle() -> None:
    w = World(collection("rr", "round_robin", ABC))
    w.pick("collection/rr")
    plan = w.plan("collection/rr")
    assert short([c.model_id for c in plan.candidates]) == ["m2", "m3", "m1"]


@pytest.mark.parametrize(
    ("weights", "window", "expected"),
    [
        ((0.7, 0.3, None), 10, {"m1": 7, "m2": 3}),
        ((0.5, 0.3, 0.2), 10, {"m1": 5, "m2": 3, "m3": 2}),
        ((1.0, 0.001, None), 1001, {"m1": 1000, "m2": 1}),
        ((0.0015, 0.0025, None), 8, {"m1": 3, "m2": 5}),  # finer than thousandths: 0.375/0.625
    ],
)
def test_weighted_split_is_exact_in_every_window(
    weights: tuple[float, float, float | None], window: int, expected: dict[str, int]
) -> None:
    members = [f"{{model: fake/m{i + 1}, weight: {w}}}" for i, w in enumerate(weights) if w]
    w = World(collection("wt", "weighted", "[" + ", ".join(members) + "]"))
    for _ in range(30):
        assert Counter(short(w.picks("collection/wt", window))) == expected


def test_weighted_is_smooth() -> None:
    w = World(
        collection(
            "wt", "weighted", "[{model: fake/m1, weight: 0.7}, {model: fake/m2, weight: 0.3}]"
        )
    )
    seq = short(w.picks("collection/wt", 10))
    # smooth WRR interleaves instead of sending 7 in a row
    assert seq == ["m1", "m2", "m1", "m1", "m1", "m2", "m1", "m1", "m2", "m1"]


def test_random_is_uniform_chi_square() -> None:
    w = World(collection("rnd", "random", ABC), seed=12345)
    n = 6000
    counts = Counter(w.picks("collection/rnd", n))
    expected = n / 3
    chi2 = sum((counts[m] - expected) ** 2 / expected for m in ("fake/m1", "fake/m2", "fake/m3"))
    assert chi2 < 13.82  # chi-square, 2 degrees of freedom, p = 0.001


def test_random_depends_only_on_the_injected_seed() -> None:
    a = World(collection("rnd", "random", ABC), seed=5).picks("collection/rnd", 20)
    b = World(collection("rnd", "random", ABC), seed=5).picks("collection/rnd", 20)
    assert a == b and len(set(a)) == 3


def test_least_used_goes_a_b_c_a_b_c() -> None:
    # equal trust and cost: declared order breaks the ties
    models = (
        "  echo/a: {trust_level: 50}\n  echo/b: {trust_level: 50}\n  echo/c: {trust_level: 50}\n"
    )
    conns = "  - {id: px, owner: platform, provider: echo, models: [echo/a, echo/b, echo/c]}\n"
    table = make_table(
        models=models,
        connections=conns,
        collections=collection(
            "lu", "least_used", "[{model: echo/a}, {model: echo/b}, {model: echo/c}]"
        ),
    )
    state = RoutingState(clock=FakeClock(), rng=random.Random(1))
    state.configure(table, ENV)
    index = TableIndex(table)
    carol = index.callers["carol"]
    route = resolve(index, carol, "collection/lu").route
    seq = []
    for _ in range(6):
        plan = plan_request(index, state, carol, route, RequestFacts())
        seq.append(plan.candidates[0].model_id)
    assert seq == ["echo/a", "echo/b", "echo/c", "echo/a", "echo/b", "echo/c"]
    plan = plan_request(index, state, carol, route, RequestFacts(), commit=False)
    assert plan.info == {
        "_usage_at_selection": 2,
        "_model_alternatives": [{"model": "echo/b", "usage": 2}, {"model": "echo/c", "usage": 2}],
    }


def test_least_used_ties_by_trust_then_cost() -> None:
    # m2 trust 60 > m1 50 > m3 40
    w = World(collection("lu", "least_used", ABC))
    assert short(w.picks("collection/lu", 3)) == ["m2", "m1", "m3"]


def test_least_used_trust_outranks_any_price() -> None:
    # a very expensive model with higher trust still wins the tie (cost only breaks equal trust)
    pricey = (
        "  fake/gold: {context_window: 1000, trust_level: 90, pricing: {input_per_mtok: 2e12}}\n"
    )
    conn = (
        "  - {id: platform-gold, owner: platform, provider: fake, models: [fake/gold],"
        " credentials: {api_key_env: PLATFORM_KEY}}\n"
    )
    members = "[{model: fake/m3}, {model: fake/gold}]"
    w = World(collection("lu", "least_used", members), models=pricey, connections=conn)
    assert w.pick("collection/lu") == "fake/gold"


def test_least_used_late_joiner_starts_at_the_lowest_peer_count() -> None:
    w = World(collection("lu", "least_used", ABC))
    w.picks("collection/lu", 3)  # 1 each
    w.cool("platform-fake", "fake/m3")
    w.picks("collection/lu", 6)  # m1 and m2 reach 4
    assert w.state.usage["collection:lu"] == {"fake/m1": 4, "fake/m2": 4, "fake/m3": 1}
    w.clock.t += 11  # m3 comes back: it counts as 4, not 1, so it is not flooded
    nxt = short(w.picks("collection/lu", 6))
    assert Counter(nxt) == {"m1": 2, "m2": 2, "m3": 2}


def test_cost_optimized_cheapest_first() -> None:
    w = World(collection("cheap", "cost_optimized", ABC))
    plan = w.plan("collection/cheap")
    # m3 (1.5) < m2 (3) < m1 (9)
    assert short([c.model_id for c in plan.candidates]) == ["m3", "m2", "m1"]


def test_latency_optimized_tries_unmeasured_first() -> None:
    w = World(collection("fast", "latency_optimized", ABC))
    w.state.record_latency("platform-fake", "fake/m1", 0.5)
    w.state.record_latency("platform-fake", "fake/m2", 0.1)
    plan = w.plan("collection/fast")
    assert short([c.model_id for c in plan.candidates]) == ["m3", "m2", "m1"]
    w.state.record_latency("platform-fake", "fake/m3", 0.3)
    plan = w.plan("collection/fast")
    assert short([c.model_id for c in plan.candidates]) == ["m2", "m3", "m1"]


@pytest.mark.parametrize("strategy", ["priority", "fallback"])
def test_priority_highest_first_and_alias_echoed(strategy: str) -> None:
    members = "[{model: fake/m1, priority: 1}, {model: fake/m2, priority: 5}, {model: fake/m3}]"
    w = World(collection("chain", strategy, members))
    plan = w.plan("collection/chain")
    assert short([c.model_id for c in plan.candidates]) == ["m2", "m1", "m3"]
    assert plan.route.strategy == strategy
    w.cool("platform-fake", "fake/m2")
    assert w.pick("collection/chain") == "fake/m1"


def test_provider_model_falls_back_private_org_platform() -> None:
    w = World("")
    plan = w.plan("fake/m1", who="alice")
    assert [c.connection_id for c in plan.candidates] == [
        "alice-fake",
        "acme-fake",
        "platform-fake",
    ]
    assert [c.priority for c in plan.candidates] == [100, 50, 0]
    plan = w.plan("fake/m1", who="carol")
    assert [c.connection_id for c in plan.candidates] == ["platform-fake"]


def test_peek_does_not_mutate_state() -> None:
    for strategy in ("round_robin", "weighted", "least_used"):
        w = World(collection("c", strategy, ABC))
        w.picks("collection/c", 2)
        before = copy.deepcopy(
            (w.state.rr_last, w.state.wrr_current, w.state.usage, w.state.usage_seen)
        )
        peeked = [w.plan("collection/c", commit=False).candidates[0].model_id for _ in range(3)]
        assert len(set(peeked)) == 1  # same answer every time: nothing advanced
        after = (w.state.rr_last, w.state.wrr_current, w.state.usage, w.state.usage_seen)
        assert after == before
        assert w.pick("collection/c") == peeked[0]  # and commit agrees with the peek


def test_no_models_lists_every_reason() -> None:
    members = (
        "[{model: fake/m1, active: false}, {model: acme/fake/m1}, {model: fake/small},"
        " {model: fake/m2}]"
    )
    w = World(
        collection("broken", "priority", members),
        models=SMALL_MODEL,
        connections=SMALL_CONNECTION,
    )
    w.cool("platform-fake", "fake/m2", 60)
    plan = w.plan("collection/broken", who="carol", facts=RequestFacts(prompt_tokens=60))
    assert plan.candidates == ()
    err = plan.error()
    assert (err.code, err.status) == ("collection_no_models", 503)
    details = err.to_body()["error"]["details"]
    assert details["total_members"] == 4 and details["available_models"] == 0
    assert details["reasons"] == [
        "fake/m1: inactive",
        "acme/fake/m1: no connection you may use (acme)",
        "fake/small: context window 50 too small for ~60 tokens",
        "fake/m2: rate limited until 2027-01-15T08:01:00Z",
    ]


def test_a_single_model_too_small_for_the_request_is_a_400_not_a_503() -> None:
    w = World("")
    plan = w.plan("fake/tiny", who="bob", facts=RequestFacts(prompt_tokens=60))
    err = plan.error()
    # retrying cannot help; OpenAI's code, which clients' context-overflow handling looks for
    assert (err.code, err.status, err.param) == ("context_length_exceeded", 400, "messages")
    assert err.message == (
        "This request exceeds the maximum context length of 'fake/tiny'"
        " (context_length_exceeded): context window 50 too small for ~60 tokens."
        " Reduce the length of the messages or of max_tokens."
    )
    assert err.headers == {"x-should-retry": "false"}
    w.cool("acme-fake", "fake/tiny", 60)  # a cooldown alone is still the 503 to retry after
    assert w.plan("fake/tiny", who="bob").error().code == "model_unavailable"


def test_missing_credentials_make_a_connection_unavailable() -> None:
    w = World("")
    assert w.state.unavailable["platform-nokey"] == "credentials not set (UNSET_KEY_FOR_TESTS)"
    plan = w.plan("fake/m3")  # platform-nokey (priority 1) is skipped, platform-fake serves
    assert [c.connection_id for c in plan.candidates] == ["platform-fake"]
    w.cool("platform-fake", "fake/m3")
    err = w.plan("fake/m3").error()
    assert err.code == "model_unavailable"
    assert err.extra["details"]["reasons"] == [
        "platform-nokey: credentials not set (UNSET_KEY_FOR_TESTS)",
        "platform-fake: rate limited until 2027-01-15T08:00:10Z",
    ]


def test_tools_and_vision_are_preferred_not_required() -> None:
    w = World(collection("p", "priority", ABC))
    plan = w.plan("collection/p", facts=RequestFacts(needs_tools=True, needs_vision=True))
    assert short([c.model_id for c in plan.candidates]) == ["m2", "m1", "m3"]
    members = "[{model: fake/m3}, {model: fake/tiny}]"
    w = World(collection("q", "priority", members))
    plan = w.plan("collection/q", facts=RequestFacts(needs_tools=True), who="bob")
    assert plan.candidates[0].model_id == "fake/m3"  # none has tools: any eligible member serves


def test_tools_still_preferred_when_no_member_has_both_capabilities() -> None:
    # m3 has none, m1 has tools only: tools + an image must not fall back to "no preference"
    w = World(collection("t", "round_robin", "[{model: fake/m3}, {model: fake/m1}]"))
    both = RequestFacts(needs_tools=True, needs_vision=True)
    assert [w.pick("collection/t", facts=both) for _ in range(4)] == ["fake/m1"] * 4
    plan = w.plan("collection/t", facts=both)
    assert [c.model_id for c in plan.candidates] == ["fake/m1", "fake/m3"]  # m3 still a fallback


def test_allowed_fails_open_a_cooldown_per_deployment() -> None:
    w = World("")
    now = w.clock()
    for i in range(2):
        assert w.state.record_failure("platform-fake", "fake/m1", now + i) is None
    cd = w.state.record_failure("platform-fake", "fake/m1", now + 2)
    assert cd is not None and cd.until == now + 2 + 30
    # the same connection keeps serving its other models
    assert w.pick("fake/m2") == "fake/m2"
    assert w.plan("fake/m1").candidates == ()
    # failures older than 60 s do not count
    w.clock.t += 100
    w.state.record_failure("platform-fake", "fake/m2", w.clock.t)
    w.state.record_failure("platform-fake", "fake/m2", w.clock.t + 61)
    assert w.state.record_failure("platform-fake", "fake/m2", w.clock.t + 62) is None


def test_reload_carries_over_counters_of_surviving_members() -> None:
    w = World(collection("lu", "least_used", ABC))
    w.picks("collection/lu", 6)
    assert w.state.usage["collection:lu"] == {"fake/m1": 2, "fake/m2": 2, "fake/m3": 2}
    new = make_table(
        collections=collection("lu", "least_used", "[{model: fake/m1}, {model: fake/m2}]")
    )
    w.state.configure(new, ENV)
    w.state.carry_over(new)
    assert w.state.usage["collection:lu"] == {"fake/m1": 2, "fake/m2": 2}
