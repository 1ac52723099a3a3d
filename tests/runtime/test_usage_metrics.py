"""The usage metrics of /metrics: tokens and cost by model, requests by collection and strategy,
fallbacks by reason, cooldowns active; labels bounded by the table (no caller, no organization)."""

from __future__ import annotations

import re

import pytest
from conftest import FakeUpstream, Gateway
from test_e2e import Start, call, chat, coll

pytestmark = pytest.mark.e2e


def _samples(gw: Gateway) -> dict[str, float]:
    status, _, body = call(gw, "GET", "/metrics", who=None)
    assert status == 200
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_tokens_cost_and_requests_by_collection(start: Start, fake: FakeUpstream) -> None:
    gw = start(collections=coll("duo", "round_robin", "[{model: fake/m1}, {model: fake/m2}]"))
    for _ in range(4):
        chat(gw, "collection/duo", "carol")  # the fake answers 10 prompt + 20 completion tokens
    chat(gw, "fake/m3", "carol")
    m = _samples(gw)
    assert m['routectl_tokens_total{kind="prompt",model="fake/m1"}'] == 20
    assert m['routectl_tokens_total{kind="completion",model="fake/m1"}'] == 40
    assert m['routectl_tokens_total{kind="prompt",model="fake/m3"}'] == 10
    # pricing: m1 3 + 6 USD, m2 1 + 2 USD per million tokens
    assert m['routectl_cost_usd_total{model="fake/m1"}'] == pytest.approx(
        2 * (10 * 3 + 20 * 6) / 1e6
    )
    assert m['routectl_cost_usd_total{model="fake/m2"}'] == pytest.approx(
        2 * (10 * 1 + 20 * 2) / 1e6
    )
    key = 'routectl_collection_requests_total{collection="duo",model="fake/m%d",status="200",strategy="round_robin"}'
    assert (m[key % 1], m[key % 2]) == (2, 2)
    assert not any("fake/m3" in k for k in m if k.startswith("routectl_collection_requests"))
    text = call(gw, "GET", "/metrics", who=None)[2].decode()
    assert "carol" not in text and "acme" not in text  # no caller or organization labels


def test_fallbacks_by_reason_and_cooldowns_active(start: Start, fake: FakeUpstream) -> None:
    gw = start(
        collections=coll("pair", "priority", "[{model: fake/m2, priority: 9}, {model: fake/m3}]")
    )
    fake.script["sk-platform/m2"] = ["429:60"]
    body, _ = chat(gw, "collection/pair", "carol")
    assert body["_fallback_reason"] == "rate_limited"
    m = _samples(gw)
    assert m['routectl_fallbacks_total{model="fake/m2",reason="rate_limited"}'] == 1
    assert m['routectl_cooldowns_active{model="fake/m2"}'] == 1
    gw.clock.t += 61  # the cooldown is over: the gauge says 0 (the series stays)
    assert _samples(gw)['routectl_cooldowns_active{model="fake/m2"}'] == 0
    assert not re.search(
        r"routectl_cooldowns_active\{[^}]*connection",
        call(gw, "GET", "/metrics", who=None)[2].decode(),
    )
