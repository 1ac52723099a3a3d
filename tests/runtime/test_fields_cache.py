"""ServedTable.routing_fields: the `_...` fields shared per (route, model) only where no request
can make them differ (no strategy fields, no fallback, not a client's own load balancer)."""

from __future__ import annotations

from conftest import ENV, make_table

from routectl.runtime.fields import routing_fields
from routectl.runtime.plan import RequestFacts, plan_request
from routectl.runtime.resolve import resolve
from routectl.runtime.routes import load_balancer_route
from routectl.runtime.served import ServedTable
from routectl.runtime.state import RoutingState


def _served() -> ServedTable:
    return ServedTable(make_table(collections=_COLLECTIONS), ENV)


_COLLECTIONS = """
  pool:
    scope: system
    strategy: least_used
    members: [{model: fake/m2}, {model: fake/m3}]
"""


def test_plain_answers_share_one_dict_equal_to_a_fresh_one() -> None:
    served = _served()
    carol = served.index.callers["carol"]
    route = resolve(served.index, carol, "fake/m2").route
    state = RoutingState()
    plan = plan_request(served.index, state, carol, route, RequestFacts())
    first = plan.candidates[0]
    a = served.routing_fields(route, plan, first, first, None)
    b = served.routing_fields(route, plan, first, first, None)
    assert a is b
    assert a == routing_fields(route, plan, first, first, None, served.sha)
    assert a["_selected_model"] == "fake/m2" and a["_routing_table"] == served.sha
    assert "_fallback_used" not in a


def test_a_fallback_strategy_fields_and_load_balancers_are_built_per_answer() -> None:
    served = _served()
    carol = served.index.callers["carol"]
    state = RoutingState()
    # a fallback: the answer names the original selection and why
    route = resolve(served.index, carol, "fake/m2").route
    plan = plan_request(served.index, state, carol, route, RequestFacts())
    first = plan.candidates[0]
    used = first._replace(model_id="fake/m3")
    fell = served.routing_fields(route, plan, used, first, "upstream_500")
    assert fell["_fallback_used"] is True and fell["_fallback_reason"] == "upstream_500"
    # ...and a later plain answer by the same model does not inherit it
    assert "_fallback_used" not in served.routing_fields(route, plan, used, used, None)
    # least_used: its usage at selection is per request
    pool = resolve(served.index, carol, "collection/pool").route
    plan = plan_request(served.index, state, carol, pool, RequestFacts())
    assert plan.info
    got = served.routing_fields(pool, plan, plan.candidates[0], plan.candidates[0], None)
    assert got is not served.routing_fields(
        pool, plan, plan.candidates[0], plan.candidates[0], None
    )
    # a request-level load balancer: the client's list of models, never kept
    lb = load_balancer_route(served.table, route.members)
    plan = plan_request(served.index, state, carol, lb, RequestFacts())
    served.routing_fields(lb, plan, plan.candidates[0], plan.candidates[0], None)
    assert all(key[0] != lb.key for key in served.fields)


def test_strategy_fields_sit_where_routing_fields_puts_them_request_after_request() -> None:
    served = _served()
    carol = served.index.callers["carol"]
    state = RoutingState()
    pool = resolve(served.index, carol, "collection/pool").route
    seen = set()
    for _ in range(4):  # the counts move every request; the route's part is built once
        plan = plan_request(served.index, state, carol, pool, RequestFacts())
        first = plan.candidates[0]
        got = served.routing_fields(pool, plan, first, first, None)
        fresh = routing_fields(pool, plan, first, first, None, served.sha)
        assert list(got.items()) == list(fresh.items())  # the same fields in the same order
        assert list(got)[-1] == "_routing_table" and "_usage_at_selection" in got
        seen.add((got["_selected_model"], got["_usage_at_selection"]))
    assert len(seen) == 4  # each answer its own counts, not a cached copy of the first
    # the route's part is kept per (route, model), without the per-request fields
    heads = [h for (key, _), h in served.field_heads.items() if key == pool.key]
    assert heads and all("_usage_at_selection" not in h for h in heads)
