"""Retry signals and OpenAI's error shape, as the official SDK sees them (it retries twice by
default: a 503 that a retry cannot fix used to cost three requests and 1.2 s)."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest
from conftest import KEYS, FakeUpstream, Gateway
from openai.types.chat import ChatCompletionMessageParam

pytestmark = pytest.mark.e2e

Start = Callable[..., Gateway]
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]

# fake/m4 is served only through a connection whose key is not set
NOKEY_MODEL = "  fake/m4: {context_window: 100000}\n"
NOKEY_CONNECTION = (
    "  - {id: platform-nokey4, owner: platform, provider: fake, models: [fake/m4],"
    " credentials: {api_key_env: UNSET_KEY_FOR_TESTS}}\n"
)
# a system collection only acme's members may use: its one member pins acme's connection
ACME_ONLY = (
    "  acme-only:\n    scope: system\n    strategy: priority\n"
    "    members: [{model: acme/fake/m2}]\n"
)


def retrying_client(gw: Gateway, who: str = "carol") -> openai.OpenAI:
    """The SDK as users run it: two retries on what it believes is retryable."""
    return openai.OpenAI(base_url=gw.base_url, api_key=KEYS[who], max_retries=2, timeout=10)


def requests_seen(gw: Gateway) -> int:
    counts = gw.runtime.metrics.request_counts
    return sum(n for (route, _, _), n in counts.items() if route == "/v1/chat/completions")


def test_a_503_no_retry_can_fix_says_so_and_the_sdk_asks_once(start: Start) -> None:
    gw = start(models=NOKEY_MODEL, connections=NOKEY_CONNECTION)
    with pytest.raises(openai.InternalServerError) as info:
        retrying_client(gw).chat.completions.create(model="fake/m4", messages=HELLO)
    assert info.value.status_code == 503
    assert info.value.code == "model_unavailable" and info.value.type == "server_error"
    headers = info.value.response.headers
    assert headers["x-should-retry"] == "false" and "retry-after" not in headers
    assert requests_seen(gw) == 1  # without the header: 3 (the SDK's two retries)


def test_a_prompt_too_long_for_every_candidate_is_context_length_exceeded(start: Start) -> None:
    gw = start()
    long_prompt: list[ChatCompletionMessageParam] = [{"role": "user", "content": "x" * 400}]
    with pytest.raises(openai.BadRequestError) as info:
        retrying_client(gw, "bob").chat.completions.create(model="fake/tiny", messages=long_prompt)
    err = info.value
    assert (err.code, err.type, err.param) == (
        "context_length_exceeded",
        "invalid_request_error",
        "messages",
    )
    assert err.response.headers["x-should-retry"] == "false"
    assert requests_seen(gw) == 1


def test_a_collection_whose_members_the_caller_may_not_use_is_403(start: Start) -> None:
    gw = start(collections=ACME_ONLY)
    with pytest.raises(openai.PermissionDeniedError) as info:
        retrying_client(gw, "carol").chat.completions.create(
            model="collection/acme-only", messages=HELLO
        )
    body = info.value.response.json()["error"]
    assert body["code"] == "access_denied"  # a 503 collection_no_models before
    assert body["message"] == (
        "Your organization does not have access to any models in this collection"
    )
    assert body["details"]["reasons"] == ["acme/fake/m2: no connection you may use (acme)"]
    assert info.value.response.headers["x-should-retry"] == "false"
    # a member of acme is served
    reply = retrying_client(gw, "bob").chat.completions.create(
        model="collection/acme-only", messages=HELLO
    )
    assert reply.model == "fake/m2"


def test_every_attempt_rate_limited_is_a_429_with_the_soonest_retry_after(
    start: Start, fake: FakeUpstream
) -> None:
    gw = start()
    # alice's fake/m1 goes down her own, acme's and the platform's connections: all three 429
    fake.script["sk-alice/m1"] = ["429:40"]
    fake.script["sk-acme/m1"] = ["429:7"]
    fake.script["sk-platform/m1"] = ["429"]  # no Retry-After: cooldown_s (30)
    client = openai.OpenAI(base_url=gw.base_url, api_key=KEYS["alice"], max_retries=0)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="fake/m1", messages=HELLO)
    err = info.value
    assert (err.code, err.type) == ("rate_limited", "requests")  # a 502 upstream_error before
    assert [a["status"] for a in err.response.json()["error"]["attempts"]] == [429, 429, 429]
    assert err.response.headers["retry-after"] == "7"
    assert err.response.headers["x-should-retry"] == "true"


def test_a_single_models_upstream_503_is_not_retried_on_top_of_routectls_attempts(
    start: Start, fake: FakeUpstream
) -> None:
    gw = start()
    fake.script["sk-platform/m2"] = ["503", "503", "503"]
    with pytest.raises(openai.APIStatusError) as info:
        retrying_client(gw, "carol").chat.completions.create(model="fake/m2", messages=HELLO)
    err = info.value
    assert (err.status_code, err.code, err.type) == (502, "upstream_error", "server_error")
    assert err.response.json()["error"]["attempts"] == [
        {"model": "fake/m2", "connection": "platform-fake", "status": 503}
    ]
    assert err.response.headers["x-should-retry"] == "false"
    assert requests_seen(gw) == 1
    assert len([c for c in fake.calls if c["model"] == "m2"]) == 1  # 3 with the SDK's retries


def test_every_error_answer_says_whether_to_retry(start: Start, fake: FakeUpstream) -> None:
    gw = start()
    client = openai.OpenAI(base_url=gw.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as unauthorized:
        client.chat.completions.create(model="fake/m1", messages=HELLO)
    assert unauthorized.value.response.headers["x-should-retry"] == "false"
    assert (unauthorized.value.type, unauthorized.value.code) == (
        "invalid_request_error",
        "invalid_api_key",
    )
    with pytest.raises(openai.NotFoundError) as missing:
        retrying_client(gw).chat.completions.create(model="nope/none", messages=HELLO)
    assert missing.value.response.headers["x-should-retry"] == "false"
    assert (missing.value.type, missing.value.code) == ("invalid_request_error", "model_not_found")
    # an upstream's own error goes back as it came, with the SDKs' rule for its status
    fake.script["sk-alice/m1"] = ["400"]
    with pytest.raises(openai.BadRequestError) as upstream:
        retrying_client(gw, "alice").chat.completions.create(model="fake/m1", messages=HELLO)
    assert upstream.value.response.headers["x-should-retry"] == "false"
    assert requests_seen(gw) == 3  # the 401, the 404 and the 400: none of them retried
