"""The benchmark's own servers answer like an OpenAI upstream, through the passthrough too.

Functional checks only (no timing assertions): the figures of `make bench` are only as good as the
fake upstream and the passthrough they are measured against.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

pytestmark = pytest.mark.e2e

BENCH = Path(__file__).resolve().parents[2] / "bench"
KEY = "sk-test-upstream"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{url}: server exited with {proc.returncode}"
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # answering, even with 404
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} not ready")


def _start(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    port = _free_port()
    proc = _start(str(BENCH / "fake_upstream.py"), "--port", str(port), "--api-key", KEY)
    try:
        _wait(f"http://127.0.0.1:{port}/healthz", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def passthrough(upstream: str) -> Iterator[str]:
    yield from _passthrough(upstream, "aiohttp")


@pytest.fixture(scope="module")
def passthrough_lean(upstream: str) -> Iterator[str]:
    """The passthrough on routectl's lean upstream client (bench/harness/clients.py)."""
    yield from _passthrough(upstream, "lean")


def _passthrough(upstream: str, client: str) -> Iterator[str]:
    port = _free_port()
    proc = _start(
        str(BENCH / "passthrough.py"),
        *("--port", str(port), "--upstream", upstream, "--api-key", KEY),
        *("--client", client),
    )
    try:
        _wait(f"http://127.0.0.1:{port}/", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _client(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=10)


@pytest.mark.parametrize("via", ["upstream", "passthrough", "passthrough_lean"])
def test_completion_and_stream(via: str, request: pytest.FixtureRequest) -> None:
    base: str = request.getfixturevalue(via)
    client = _client(base, KEY if via == "upstream" else "ignored-by-the-passthrough")
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": "hi"}
    ]

    answer = client.chat.completions.create(model="fake/m-1", messages=messages)
    assert answer.model == "fake/m-1"
    assert answer.choices[0].message.content == "Hello from the fake upstream."
    assert answer.usage is not None and answer.usage.total_tokens == 15

    chunks = list(
        client.chat.completions.create(
            model="fake/m-2",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake upstream."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 15


def test_upstream_checks_the_key_and_counts_models(upstream: str) -> None:
    with pytest.raises(openai.AuthenticationError):
        _client(upstream, "wrong").chat.completions.create(
            model="fake/m-3", messages=[{"role": "user", "content": "hi"}]
        )
    _client(upstream, KEY).chat.completions.create(
        model="fake/m-3", messages=[{"role": "user", "content": "hi"}]
    )
    with urllib.request.urlopen(f"{upstream}/stats", timeout=5) as resp:
        stats = json.loads(resp.read())
    assert stats["fake/m-3"] == 1


def test_upstream_reads_chunked_request_bodies(upstream: str) -> None:
    body = json.dumps({"model": "fake/chunked", "messages": []}).encode()
    host, port = upstream.removeprefix("http://").split(":")
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Authorization: Bearer "
        + KEY.encode()
        + b"\r\nConnection: close\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    )
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b'"model":"fake/chunked"' in data


@pytest.mark.parametrize("mode", ["load", "ttfc"])
def test_python_load_generator_completes_requests(mode: str, upstream: str, tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"model": "fake/m-4", "messages": [], "stream": mode == "ttfc"}))
    out = subprocess.run(
        [
            sys.executable,
            str(BENCH / "harness" / "loadgen.py"),
            mode,
            "--url",
            f"{upstream}/v1/chat/completions",
            "--body-file",
            str(body),
            f"--header=Authorization: Bearer {KEY}",
            "-c",
            "4",
            "-d",
            "0.3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["requests"] > 0
    errors = result["errors"]
    assert (sum(errors.values()) if isinstance(errors, dict) else errors) == 0


def test_upstream_answers_as_anthropic_messages(upstream: str) -> None:
    client = anthropic.Anthropic(
        base_url=upstream, api_key="unused", default_headers={"x-api-key": KEY}, max_retries=0
    )
    messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hi"}]
    answer = client.messages.create(model="fake-anth/m-5", max_tokens=8, messages=messages)
    assert answer.model == "fake-anth/m-5" and answer.stop_reason == "end_turn"
    assert [b.type for b in answer.content] == ["text"]
    with client.messages.stream(model="fake-anth/m-5", max_tokens=8, messages=messages) as stream:
        assert "".join(stream.text_stream) == "Hello from the fake upstream."
        final = stream.get_final_message()
    assert final.model == "fake-anth/m-5" and final.usage.output_tokens == 6
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(
            base_url=upstream, api_key="x", default_headers={"x-api-key": "wrong"}, max_retries=0
        ).messages.create(model="fake-anth/m-5", max_tokens=8, messages=messages)
    with urllib.request.urlopen(f"{upstream}/stats", timeout=5) as resp:
        assert json.loads(resp.read())["fake-anth/m-5"] == 2
