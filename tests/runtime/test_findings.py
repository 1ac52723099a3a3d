"""Issue 13's numbered findings, each reproduced against a live gateway (or the loader) and held
fixed. Findings 3 and the dead-worker half of 7 are issue 10's: tests/runtime/test_connections.py
and test_workers.py."""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from conftest import KEYS, FakeUpstream, LoopThread
from faults import FaultUpstream, Running, Trap, start_app

from routectl.review.explain_http import mount_explain
from routectl.runtime.state import format_time
from routectl.table import TableError, content_hash, dump_table, load_table

pytestmark = pytest.mark.e2e

MEMBERS = "    members: [{model: fake/m1}, {model: fake/m2}]\n"
TEAM = "  team:\n    scope: system\n    strategy: priority\n" + MEMBERS
LEAST = "  fair:\n    scope: system\n    strategy: least_used\n" + MEMBERS


@pytest.fixture
def trap(loop_thread: LoopThread) -> Iterator[Trap]:
    t = Trap()
    runner, t.port = loop_thread.start(t.app())
    yield t
    loop_thread.stop(runner)


@pytest.fixture
def faulty(fake: FakeUpstream, trap: Trap, loop_thread: LoopThread) -> Iterator[FaultUpstream]:
    up = FaultUpstream(fake, trap)
    runner, port = loop_thread.start(up.app())
    fake.port = port  # the gateway's table points at the faulty server; it scripts `fake`
    yield up
    loop_thread.stop(runner)


@pytest.fixture
def runners(loop_thread: LoopThread) -> Iterator[list[web.AppRunner]]:
    started: list[web.AppRunner] = []
    yield started
    for runner in started:
        loop_thread.stop(runner)


def request(
    gw: Running,
    method: str,
    path: str,
    body: Any = None,
    who: str | None = "alice",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=20)
    sent = {"Content-Type": "application/json", **(headers or {})}
    if who:
        sent["Authorization"] = f"Bearer {KEYS[who]}"
    raw = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
    conn.request(method, path, body=raw, headers=sent)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def chat(gw: Running, model: str, who: str = "alice", **extra: Any) -> tuple[int, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
    status, _, data = request(gw, "POST", "/v1/chat/completions", body, who)
    return status, json.loads(data) if data.startswith(b"{") else data


# ------------------------------------------------------------------ 1. Retry-After


@pytest.mark.parametrize(
    ("value", "expected_s"),
    [
        ("99999999999999", 3600),
        ("100000000", 3600),
        ("inf", 30),
        ("-inf", 30),
        ("1e309", 30),
        ("nan", 30),
        ("garbage", 30),
        ("-5", 30),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 3600),
        ("120", 120),
    ],
)
def test_retry_after_is_capped_and_validated(
    loop_thread: LoopThread,
    faulty: FaultUpstream,
    runners: list[web.AppRunner],
    value: str,
    expected_s: float,
) -> None:
    gw = start_app(
        loop_thread, faulty.port, runners, parts={"collections": TEAM}, mounts=[mount_explain]
    )
    faulty.script["sk-alice/m1"] = [f"429:{value}"]
    status, body = chat(gw, "collection/team")
    assert status == 200, body  # fell back to the next connection
    now = gw.clock.t
    cooldown = gw.runtime.state.cooldowns[("alice-fake", "fake/m1")]
    assert cooldown.until - now == pytest.approx(expected_s, abs=2)
    # a second request, the collection API and explain all still answer (no 500 anywhere)
    assert chat(gw, "collection/team")[0] == 200
    status, _, data = request(gw, "GET", "/api/user/model-collections/team")
    assert status == 200, data
    detail = json.loads(data)
    reasons = [c["reason"] for m in detail["models"] for c in m["health"]["connections"]]
    assert any(r and r.startswith("rate limited until") for r in reasons)
    status, _, data = request(
        gw, "POST", "/v1/route/explain", {"model": "collection/team", "messages": []}
    )
    assert status == 200, data


def test_max_cooldown_s_from_routing_yaml_caps_retry_after(
    loop_thread: LoopThread, faulty: FaultUpstream, runners: list[web.AppRunner]
) -> None:
    from conftest import base_yaml

    from routectl.compiler import build_table

    text = base_yaml(faulty.port, collections=TEAM).replace(
        "  allowed_fails: 3\n", "  allowed_fails: 3\n  max_cooldown_s: 90\n"
    )
    table = build_table(text=text)
    assert table.defaults.max_cooldown_s == 90
    gw = start_app(loop_thread, faulty.port, runners, table=table)
    faulty.script["sk-alice/m1"] = ["429:99999"]
    assert chat(gw, "collection/team")[0] == 200
    cooldown = gw.runtime.state.cooldowns[("alice-fake", "fake/m1")]
    assert cooldown.until - gw.clock.t == pytest.approx(90)
    # and the table keeps it (absent when default, so older tables keep their hash)
    assert b'"max_cooldown_s": 90' in dump_table(table)[0]


def test_format_time_never_raises() -> None:
    assert format_time(1e20) == "9999-12-31T23:59:59Z"
    assert format_time(float("inf")) == "9999-12-31T23:59:59Z"
    assert format_time(float("nan")) == "9999-12-31T23:59:59Z"
    assert format_time(0) == "1970-01-01T00:00:00Z"


# ------------------------------------------------------------------ 2. redirects


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_upstream_redirects_are_never_followed(
    loop_thread: LoopThread,
    faulty: FaultUpstream,
    trap: Trap,
    runners: list[web.AppRunner],
    status: int,
) -> None:
    gw = start_app(loop_thread, faulty.port, runners)
    faulty.script["sk-alice/m1"] = [f"redirect:{status}"]
    code, body = chat(gw, "fake/m1")
    assert trap.hits == []  # neither the key nor the prompt went to the other origin
    assert code == 200  # a 3xx is a failure: the next connection (acme's) answered
    assert body["_fallback_reason"] == "upstream_redirect"
    assert body["_selected_model"] == "fake/m1"
    assert faulty.calls[-1]["key"] == "sk-acme"
    # only connection: a 502, not the redirect
    faulty.script["m3"] = [f"redirect:{status}"] * 3
    code, body = chat(gw, "fake/m3", who="carol")
    assert code == 502, body
    assert body["error"]["code"] == "upstream_error"
    assert body["error"]["attempts"][0]["error"] == "upstream_redirect"
    assert trap.hits == []


# ------------------------------------------------------------------ 4. response size


def test_max_response_bytes_bounds_bodies_errors_and_stream_events(
    loop_thread: LoopThread, faulty: FaultUpstream, runners: list[web.AppRunner]
) -> None:
    gw = start_app(loop_thread, faulty.port, runners, max_response_bytes=20_000)
    assert chat(gw, "fake/m3", who="carol")[0] == 200  # a normal answer still passes
    faulty.script["m3"] = ["big:5000"]
    assert chat(gw, "fake/m3", who="carol")[0] == 200  # under the limit
    for fault in ("big:100000", "bigerror:100000"):
        faulty.script["m3"] = [fault]
        code, body = chat(gw, "fake/m3", who="carol")
        assert code == 502, body
        assert body["error"]["code"] == "upstream_error"
        assert body["error"]["attempts"][0]["error"] == "response_too_large"
    # a stream: an event over the limit ends it with an in-band error, smaller events pass
    faulty.script["m3"] = ["bigevent:100000"]
    status, _headers, data = request(
        gw,
        "POST",
        "/v1/chat/completions",
        {"model": "fake/m3", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        who="carol",
    )
    assert status == 200
    assert b"response_too_large" in data
    assert len(data) < 20_000
    # three bad replies within a minute cooled the deployment down (allowed_fails): reset it
    gw.runtime.state.cooldowns.clear()
    faulty.script["m3"] = ["bigevent:5000"]
    status, _, data = request(
        gw,
        "POST",
        "/v1/chat/completions",
        {"model": "fake/m3", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        who="carol",
    )
    assert status == 200 and b"response_too_large" not in data and data.endswith(b"[DONE]\n\n")


def test_the_default_response_limit_is_32_mib() -> None:
    from routectl.runtime.options import DEFAULT_MAX_RESPONSE_BYTES

    assert DEFAULT_MAX_RESPONSE_BYTES == 32 * 1024 * 1024


# ------------------------------------------------------------------ 6. upstream auth failures


@pytest.mark.parametrize("fault", ["401leak", "403"])
def test_upstream_auth_failure_is_502_without_its_body_and_marks_the_connection(
    loop_thread: LoopThread, faulty: FaultUpstream, runners: list[web.AppRunner], fault: str
) -> None:
    gw = start_app(loop_thread, faulty.port, runners)
    faulty.script["m3"] = [fault]
    code, body = chat(gw, "fake/m3", who="carol")  # platform-fake is carol's only usable one
    assert code == 502, body
    assert body["error"]["code"] == "upstream_auth_error"
    raw = json.dumps(body)
    assert "sk-platform" not in raw and "Incorrect API key" not in raw
    assert "invalid_api_key" not in raw  # the caller's own key is fine
    why = gw.runtime.state.unavailable["platform-fake"]
    assert why == f"credentials refused by the upstream (HTTP {403 if fault == '403' else 401})"
    # the connection is out until a reload: the next request does not reach the upstream
    calls = len(faulty.calls)
    code, body = chat(gw, "fake/m3", who="carol")
    assert code == 503 and body["error"]["code"] == "model_unavailable"
    assert "credentials refused" in json.dumps(body)
    assert len(faulty.calls) == calls


def test_upstream_auth_failure_falls_back_to_another_connection(
    loop_thread: LoopThread, faulty: FaultUpstream, runners: list[web.AppRunner]
) -> None:
    gw = start_app(loop_thread, faulty.port, runners)
    faulty.script["sk-alice/m1"] = ["401leak"]
    code, body = chat(gw, "fake/m1")
    assert code == 200
    assert body["_fallback_reason"] == "upstream_auth_error"
    assert "alice-fake" in gw.runtime.state.unavailable


# ------------------------------------------------------------------ 7. lower findings


def _raw_http(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(raw)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize(
    "header",
    [
        b"Authorization: Bearer SECRET-KEY-" + b"A" * 10_000,
        b"Authorization: Bearer SECRET-KEY-\x01x",
        b"Authorization: Bearer SECRET-KEY-\x7f",
    ],
)
def test_malformed_authorization_is_never_echoed_or_logged(
    loop_thread: LoopThread,
    faulty: FaultUpstream,
    runners: list[web.AppRunner],
    caplog: pytest.LogCaptureFixture,
    header: bytes,
) -> None:
    gw = start_app(loop_thread, faulty.port, runners)
    with caplog.at_level(logging.DEBUG):
        answer = _raw_http(
            gw.port,
            b"GET /v1/models HTTP/1.1\r\nHost: x\r\n" + header + b"\r\nConnection: close\r\n\r\n",
        )
    assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
    assert b"SECRET" not in answer
    assert b'"code":"invalid_request"' in answer
    assert all("SECRET" not in r.getMessage() for r in caplog.records)
    assert all(r.exc_info is None for r in caplog.records)
    assert chat(gw, "fake/m1")[0] == 200  # and the server keeps serving


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [70, 256, 600, 1023])
def test_deeply_nested_json_is_400_before_any_state_changes(
    loop_thread: LoopThread, faulty: FaultUpstream, runners: list[web.AppRunner], depth: int
) -> None:
    gw = start_app(loop_thread, faulty.port, runners, parts={"collections": LEAST})
    state = gw.runtime.state
    assert chat(gw, "collection/fair")[0] == 200
    before = {k: dict(v) for k, v in state.usage.items()}
    calls = len(faulty.calls)
    # raw bytes: json.dumps itself refuses the deepest of these
    body = (
        b'{"model":"collection/fair","messages":[{"role":"user","content":"hi"}],"metadata":'
        + b'{"a":' * depth
        + b'"x"'
        + b"}" * depth
        + b"}"
    )
    status, _, data = request(gw, "POST", "/v1/chat/completions", body)
    assert status == 400, data
    assert json.loads(data)["error"]["code"] == "invalid_request"
    assert {k: dict(v) for k, v in state.usage.items()} == before
    assert len(faulty.calls) == calls
    # nesting a real request needs (tool schemas) still passes
    assert chat(gw, "collection/fair", metadata=_nested(20))[0] == 200


def _rehashed(table_path: Path, edit: Any) -> Path:
    data = orjson.loads(table_path.read_bytes())
    edit(data)
    data["sha256"] = content_hash(data)
    out = table_path.with_name("tampered.json")
    out.write_bytes(orjson.dumps(data, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2))
    return out


TAMPERINGS = {
    "missing connection": lambda d: d["model_connections"]["fake/m1"].append("nope"),
    "unknown strategy": lambda d: d["collections"]["auto-free"].update(strategy="sideways"),
    "member of an unknown model": lambda d: d["collections"]["auto-free"]["members"][0].update(
        model_id="fake/none", model="fake/none"
    ),
    "non-string base_url": lambda d: d["connections"]["platform-fake"].update(base_url=12),
    "unknown api": lambda d: d["connections"]["platform-fake"].update(api="smtp"),
    "weight as text": lambda d: d["collections"]["auto-free"]["members"][0].update(weight="heavy"),
    "connection of an unknown model": lambda d: d["connections"]["platform-fake"]["models"].append(
        "fake/none"
    ),
}


@pytest.fixture
def table_file(tmp_path: Path) -> Path:
    from conftest import make_table

    raw, _ = dump_table(make_table(9))
    path = tmp_path / "routing_table.json"
    path.write_bytes(raw)
    return path


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_a_rehashed_tampered_table_is_refused_at_load(table_file: Path, name: str) -> None:
    tampered = _rehashed(table_file, TAMPERINGS[name])
    with pytest.raises(TableError, match=r"inconsistent|malformed"):
        load_table(tampered)


def test_a_refused_reload_is_counted(
    loop_thread: LoopThread, faulty: FaultUpstream, runners: list[web.AppRunner], table_file: Path
) -> None:
    gw = start_app(loop_thread, faulty.port, runners)
    tampered = _rehashed(table_file, TAMPERINGS["non-string base_url"])
    assert gw.runtime.reload_from_file(tampered) is False
    assert gw.runtime.served.sha == gw.table.sha256  # still serving the old table
    _status, _, data = request(gw, "GET", "/metrics", who=None)
    assert 'routectl_table_reloads_total{result="refused"} 1.0' in data.decode()
    assert chat(gw, "fake/m1")[0] == 200


def test_endless_and_special_files_are_refused(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(TableError, match="not a regular file"):
        load_table("/dev/zero")
    fifo = tmp_path / "table.fifo"
    os.mkfifo(fifo)
    with pytest.raises(TableError, match="not a regular file"):
        load_table(fifo)
    link = tmp_path / "link.json"
    link.symlink_to("/dev/urandom")
    with pytest.raises(TableError, match="not a regular file"):
        load_table(link)
    assert time.monotonic() - started < 10


@pytest.mark.slow
def test_serve_of_an_endless_table_exits_and_sigterm_works(tmp_path: Path) -> None:
    fifo = tmp_path / "table.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("routectl")),
            "serve",
            "--table",
            str(fifo),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
        raise
    assert proc.returncode == 1
    assert b"not a regular file" in err


def test_collection_detail_hides_other_users_private_latency(
    loop_thread: LoopThread, faulty: FaultUpstream, runners: list[web.AppRunner]
) -> None:
    gw = start_app(loop_thread, faulty.port, runners, parts={"collections": TEAM})
    state = gw.runtime.state
    state.record_latency("alice-fake", "fake/m1", 9.876)  # alice's private deployment
    state.record_latency("platform-fake", "fake/m1", 0.5)
    _, _, data = request(gw, "GET", "/api/user/model-collections/team", who="carol")
    detail = json.loads(data)
    m1 = next(m for m in detail["models"] if m["model_id"] == "fake/m1")
    assert m1["health"]["latency_ms"] == 500.0
    assert "9876" not in data.decode() and "alice-fake" not in data.decode()
    _, _, data = request(gw, "GET", "/api/user/model-collections/team", who="alice")
    assert "9876.0" in data.decode()  # alice sees her own


def test_metrics_hide_private_series_without_a_token_and_need_the_token_when_set(
    loop_thread: LoopThread, faulty: FaultUpstream, runners: list[web.AppRunner]
) -> None:
    gw = start_app(loop_thread, faulty.port, runners)
    assert chat(gw, "fake/m1")[0] == 200  # alice's private connection
    assert chat(gw, "fake/m3", who="carol")[0] == 200  # the platform's
    _, _, data = request(gw, "GET", "/metrics", who=None)
    text = data.decode()
    assert "alice-fake" not in text and "acme" not in text
    assert 'connection="platform-fake"' in text
    assert 'routectl_requests_total{model="fake/m3"' in text
    locked = start_app(loop_thread, faulty.port, runners, metrics_token="s3cret")
    assert request(locked, "GET", "/metrics", who=None)[0] == 401
    assert request(locked, "GET", "/metrics", who="alice")[0] == 401  # a caller key is no token
    status, _, data = request(
        locked, "GET", "/metrics", who=None, headers={"Authorization": "Bearer s3cret"}
    )
    assert status == 200 and b"routectl_requests_total" in data
    assert request(locked, "GET", "/healthz", who=None)[0] == 200
    assert request(locked, "GET", "/readyz", who=None)[0] == 200


@pytest.mark.parametrize("fault", ["html", "notobject"])
def test_a_non_json_200_is_an_upstream_failure(
    loop_thread: LoopThread, faulty: FaultUpstream, runners: list[web.AppRunner], fault: str
) -> None:
    gw = start_app(loop_thread, faulty.port, runners)
    faulty.script["sk-alice/m1"] = [fault]
    code, body = chat(gw, "fake/m1")
    assert code == 200 and body["_fallback_reason"] == "invalid_json"
    faulty.script["m3"] = [fault] * 3
    code, body = chat(gw, "fake/m3", who="carol")
    assert code == 502 and body["error"]["code"] == "upstream_error"
    assert body["error"]["attempts"][0]["error"] == "invalid_json"


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_no_dialect_follows_a_redirect(loop_thread: LoopThread, trap: Trap, api: str) -> None:
    import aiohttp

    from routectl.runtime.dialects import DIALECTS, Attempt
    from routectl.table import Connection

    async def redirect(request: web.Request) -> web.StreamResponse:
        location = f"http://127.0.0.1:{trap.port}/stolen"
        return web.Response(status=307, headers={"Location": location})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    runner, port = loop_thread.start(app)
    conn = Connection(
        id="c",
        owner="platform",
        owner_kind="platform",
        provider="p",
        api=api,  # type: ignore[arg-type]
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key_env="K",
        priority=0,
        models=("p/m",),
        upstream_names={"p/m": "m"},
    )
    dialect = DIALECTS[api]
    endpoint = dialect.endpoint(conn, {"K": "sk-secret"})
    attempt = Attempt(
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "prompt"}]},
        False,
        False,
        "p/m",
        "m",
        None,
        "rid",
        1,
    )

    async def send() -> int:
        async with aiohttp.ClientSession() as session:
            reply = await dialect.send(session, endpoint, attempt, aiohttp.ClientTimeout(total=5))
            status = reply.status
            reply.release()
            return status

    try:
        assert loop_thread.run(send()) == 307
    finally:
        loop_thread.stop(runner)
    assert trap.hits == []  # neither the key nor the prompt reached the other origin
