"""Both upstream clients behind the gateway: the lean default and `--upstream-client aiohttp`.

The rest of the suite runs on the default (lean) client; these run the same request shapes on
both, so `serve --upstream-client aiohttp` stays a working way back.
"""

from __future__ import annotations

import http.client
import json
import random
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web
from click.testing import CliRunner
from conftest import ENV, KEYS, FakeUpstream, LoopThread, make_table

from routectl.cli import main as cli
from routectl.runtime.app import create_app
from routectl.runtime.keys import RUNTIME
from routectl.runtime.transport import Transport
from routectl.runtime.upstream_client import open_upstream_client

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["default", "lean", "aiohttp"])
def gateway_port(
    request: pytest.FixtureRequest, loop_thread: LoopThread, fake: FakeUpstream
) -> Iterator[tuple[int, web.Application, str]]:
    chosen = {} if request.param == "default" else {"upstream_client": request.param}
    app = create_app(make_table(fake.port), rng=random.Random(1), environ=ENV, **chosen)
    runner, port = loop_thread.start(app)
    yield port, app, request.param
    loop_thread.stop(runner)


def _post(port: int, model: str, stream: bool = False) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    )
    headers = {"Authorization": f"Bearer {KEYS['alice']}", "Content-Type": "application/json"}
    conn.request("POST", "/v1/chat/completions", body, headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def test_the_client_in_use(gateway_port: tuple[int, web.Application, str]) -> None:
    port, app, name = gateway_port
    assert _post(port, "fake/m1")[0] == 200
    session = app[RUNTIME].session
    expected = aiohttp.ClientSession if name == "aiohttp" else Transport  # lean by default
    assert isinstance(session, expected) and not session.closed


def test_json_stream_and_fallback(
    gateway_port: tuple[int, web.Application, str], fake: FakeUpstream
) -> None:
    port, _, _ = gateway_port
    status, data = _post(port, "fake/m1")
    assert status == 200
    answer = json.loads(data)
    assert answer["model"] == "fake/m1" and answer["choices"][0]["message"]["content"]
    status, data = _post(port, "fake/m1", stream=True)
    # relayed chunk for chunk, each carrying the routed model id instead of the upstream's name
    expected = b"".join(fake.stream_chunks).replace(b'"model":"up"', b'"model":"fake/m1"')
    assert status == 200 and data == expected
    fake.script["sk-alice/m1"] = ["500"]  # the own connection fails: the org's answers
    status, data = _post(port, "fake/m1")
    assert status == 200 and json.loads(data)["_fallback_used"] is True
    for _ in range(20):  # keep-alive reuse across many requests, on either client
        assert _post(port, "fake/m2")[0] == 200


async def test_clients_open_and_close_by_name() -> None:
    with pytest.raises(ValueError, match="unknown upstream client"):
        async with open_upstream_client("curl", 10):
            pass
    for name, kind in (("lean", Transport), ("aiohttp", aiohttp.ClientSession)):
        async with open_upstream_client(name, 10) as session:
            assert isinstance(session, kind) and not session.closed
        assert session.closed


def test_serve_offers_both_clients() -> None:
    out = CliRunner().invoke(cli, ["serve", "--help"])
    assert out.exit_code == 0
    assert "--upstream-client [lean|aiohttp]" in out.output
    assert "ROUTECTL_UPSTREAM_CLIENT" in out.output
