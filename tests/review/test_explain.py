"""`routectl explain`: the runtime's own resolution and plan, and agreement with what the runtime does."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner
from click.testing import CliRunner
from openai import AsyncOpenAI, AuthenticationError

from routectl.cli import main
from routectl.review.explain import explain_model, explain_request, fresh_state
from routectl.review.explain_http import mount_explain
from routectl.review.explain_text import render_explanation
from routectl.runtime.app import create_app
from routectl.runtime.front import FrontRunner
from routectl.runtime.index import TableIndex
from routectl.runtime.plan import RequestFacts
from routectl.table import RoutingTable

from .conftest import BASE_YAML, ENV, KEYS, build, variant

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]

LUCKY = """
  lucky:
    display_name: Lucky
    description: Uniform random.
    scope: system
    strategy: random
    members:
      - {model: openai/gpt-b}
      - {model: echo/echo-1}
      - {model: echo/echo-mini}
"""


def _explain(
    table: RoutingTable, who: str, model: str, env: dict[str, str] | None = None, **facts: Any
) -> dict[str, Any]:
    state = fresh_state(table, ENV if env is None else env)
    index = TableIndex(table)
    return explain_model(index, state, index.callers[who], model, RequestFacts(**facts))


def test_fallback_chain_lists_private_keys_first(base_table: RoutingTable) -> None:
    data = _explain(base_table, "ann", "collection/chain")
    assert data["resolution"]["rule"] == "collection/NAME"
    assert [(c["member"], c["connection"], c["tier"]) for c in data["candidates"]] == [
        ("openai/gpt-a", "ann-openai", "private"),
        ("openai/gpt-a", "team-openai", "organization"),
        ("openai/gpt-a", "platform-openai", "platform"),
    ]
    assert data["max_attempts"] == 3
    assert data["status"] == 200


def test_weighted_members_carry_probabilities(base_table: RoutingTable) -> None:
    data = _explain(base_table, "cid", "collection/split")
    assert [(e["member"], e["probability"]) for e in data["eligible"]] == [
        ("echo/echo-1", 0.5),
        ("echo/echo-mini", 0.5),
    ]


def test_unset_credentials_make_a_connection_unavailable(base_table: RoutingTable) -> None:
    env = {k: v for k, v in ENV.items() if k != "REVIEW_TEST_ANN_KEY"}
    data = _explain(base_table, "ann", "collection/chain", env)
    assert data["candidates"][0]["connection"] == "team-openai"
    assert data["skipped_connections"] == [
        {
            "member": "openai/gpt-a",
            "connection": "ann-openai",
            "reason": "credentials not set (REVIEW_TEST_ANN_KEY)",
        }
    ]
    nothing = _explain(base_table, "cid", "openai/gpt-b", {})
    assert nothing["status"] == 503
    assert nothing["error"]["code"] == "model_unavailable"
    assert nothing["excluded"] == [
        {"subject": "platform-openai", "reason": "credentials not set (REVIEW_TEST_PLATFORM_KEY)"}
    ]


def test_filters_say_why_a_member_was_removed(base_table: RoutingTable) -> None:
    data = _explain(base_table, "cid", "collection/team-pool")
    assert data["error"]["code"] == "access_denied"
    data = _explain(base_table, "bob", "collection/ann-only")
    assert data["error"]["code"] == "collection_not_found"
    data = _explain(base_table, "bob", "collection/split", prompt_tokens=10000)
    assert data["excluded"] == [
        {"subject": "echo/echo-mini", "reason": "context window 8192 too small for ~10000 tokens"}
    ]
    data = _explain(base_table, "ann", "collection/split", needs_vision=True)
    # no member has vision: every eligible member still serves, in strategy order
    assert [e["preferred"] for e in data["eligible"]] == [True, True]
    data = _explain(base_table, "ann", "collection/team-pool", needs_tools=True)
    assert [(e["member"], e["preferred"]) for e in data["eligible"]] == [
        ("openai/gpt-b", True),
        ("team/echo/echo-1", True),
        ("echo/echo-mini", False),
    ]


def test_text_rendering(base_table: RoutingTable) -> None:
    env = {k: v for k, v in ENV.items() if k != "REVIEW_TEST_ANN_KEY"}
    text = render_explanation(_explain(base_table, "ann", "collection/chain", env))
    assert text.splitlines()[1] == (
        "resolves: collection/NAME -> collection/chain, strategy fallback, up to 3 attempt(s)"
    )
    assert (
        "  1. openai/gpt-a via team-openai (organization key of team, connection priority 50, "
        "member priority 10)"
    ) in text
    assert "  - openai/gpt-a via ann-openai: credentials not set (REVIEW_TEST_ANN_KEY)" in text


def test_cli_json_and_unknown_user(
    write_config: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(BASE_YAML)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["explain", "collection/chain", "--as", "bob", "--config", str(config), "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["candidates"][0]["connection"] == "team-openai"
    monkeypatch.delenv("REVIEW_TEST_TEAM_KEY")
    result = runner.invoke(
        main, ["explain", "collection/chain", "--as", "bob", "--config", str(config)]
    )
    assert "1. openai/gpt-a via platform-openai" in result.output
    result = runner.invoke(
        main, ["explain", "collection/chain", "--as", "zed", "--config", str(config)]
    )
    assert result.exit_code == 2
    assert "no user 'zed'" in result.output


# ---------------------------------------------------------------- agreement with the runtime


async def _fake_upstream(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    )


@pytest.fixture
async def served(aiohttp_server: ServerFactory) -> AsyncIterator[tuple[RoutingTable, str]]:
    """A fake OpenAI upstream and the runtime serving base.yaml (+ a random collection) against it."""
    upstream = web.Application()
    upstream.router.add_post("/v1/chat/completions", _fake_upstream)
    up = await aiohttp_server(upstream)
    text = variant(
        ('base_url: "http://127.0.0.1:9/v1"', f'base_url: "http://127.0.0.1:{up.port}/v1"'),
        ("collections:\n", "collections:" + LUCKY),
    )
    table = build(text)
    app = create_app(table, rng=random.Random(42), environ=ENV, mounts=[mount_explain])
    runtime = _FrontTestServer(app)
    await runtime.start_server()
    try:
        yield table, f"http://127.0.0.1:{runtime.port}/v1"
    finally:
        await runtime.close()


class _FrontTestServer(TestServer):
    """aiohttp's TestServer serving a routectl app through its front, like `routectl serve`."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return FrontRunner(self.app, **kwargs)


CASES = [
    ("ann", "collection/chain", {}),
    ("bob", "collection/chain", {}),
    ("cid", "collection/chain", {}),
    ("ann", "collection/ann-only", {}),
    ("cid", "openai/gpt-b", {}),
    ("ann", "team/openai/gpt-b", {}),
    ("bob", "collection/team-pool", {"tools": [{"type": "function", "function": {"name": "f"}}]}),
    ("cid", "collection/split", {}),
]


@pytest.mark.e2e
@pytest.mark.parametrize(("who", "model", "extra"), CASES)
async def test_explain_agrees_with_the_runtime(
    served: tuple[RoutingTable, str], who: str, model: str, extra: dict[str, Any]
) -> None:
    table, base_url = served
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        **extra,
    }
    # explained in a fresh process with the same credentials, then sent to a fresh runtime
    index = TableIndex(table)
    data = explain_request(index, fresh_state(table, ENV), index.callers[who], body)
    first = data["candidates"][0]
    async with AsyncOpenAI(
        base_url=base_url, api_key=KEYS[who], max_retries=0, timeout=10
    ) as client:
        raw = await client.chat.completions.with_raw_response.create(**body)
    assert raw.headers["x-routectl-selected-model"] == first["model"]
    assert raw.headers["x-routectl-connection"] == first["connection"]


@pytest.mark.e2e
async def test_route_explain_endpoint_predicts_each_next_request(
    served: tuple[RoutingTable, str],
) -> None:
    """Live state: round robin, smooth WRR and random draws, explained then sent, request by request."""
    _, base_url = served
    seen: dict[str, set[str]] = {}
    async with AsyncOpenAI(
        base_url=base_url, api_key=KEYS["bob"], max_retries=0, timeout=10
    ) as client:
        for model in ("collection/team-pool", "collection/split", "collection/lucky"):
            for _ in range(6):
                body: dict[str, Any] = {
                    "model": model,
                    "messages": [{"role": "user", "content": "hi"}],
                }
                explained = await client.post("/route/explain", body=body, cast_to=dict[str, Any])
                raw = await client.chat.completions.with_raw_response.create(**body)
                predicted = explained["candidates"][0]
                assert raw.headers["x-routectl-selected-model"] == predicted["model"], model
                assert raw.headers["x-routectl-connection"] == predicted["connection"], model
                seen.setdefault(model, set()).add(predicted["member"])
    # the sequence really moved: the endpoint followed the live cursors, not a fresh state
    assert seen["collection/team-pool"] == {"openai/gpt-b", "team/echo/echo-1", "echo/echo-mini"}
    assert seen["collection/split"] == {"echo/echo-1", "echo/echo-mini"}
    assert len(seen["collection/lucky"]) > 1


@pytest.mark.e2e
async def test_route_explain_endpoint_errors(served: tuple[RoutingTable, str]) -> None:
    _, base_url = served
    async with AsyncOpenAI(
        base_url=base_url, api_key=KEYS["cid"], max_retries=0, timeout=10
    ) as client:
        denied = await client.post(
            "/route/explain",
            body={"model": "collection/team-pool", "messages": [{"role": "user", "content": "x"}]},
            cast_to=dict[str, Any],
        )
    assert denied["status"] == 403
    assert denied["error"]["code"] == "access_denied"
    async with AsyncOpenAI(base_url=base_url, api_key="wrong", max_retries=0, timeout=10) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.post("/route/explain", body={"model": "x"}, cast_to=dict[str, Any])
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"


def test_text_says_a_members_probability_once() -> None:
    # bob reaches echo/echo-1 and openai/gpt-b each through two connections (team, then platform)
    table = build(variant(("collections:\n", "collections:" + LUCKY)))
    text = render_explanation(_explain(table, "bob", "collection/lucky"))
    attempts = [line.split()[1:] for line in text.splitlines() if line[:4].strip()[:1].isdigit()]
    by_member: dict[str, list[bool]] = {}
    for words in attempts:
        by_member.setdefault(words[0], []).append("probability" in " ".join(words))
    assert any(len(flags) == 2 for flags in by_member.values())  # a member with two attempts
    assert all(flags[0] and not any(flags[1:]) for flags in by_member.values())
