"""CORS in a real browser: headless Chromium (Debian's `chromium`; `make test` installs it)
loads a page from one origin that calls `routectl serve --cors-origin` on another, with the
headers the SDKs send (a preflight each), a stream and an error; a page on an origin that was not
allowed is blocked by the browser."""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import KEYS, LoopThread, make_table
from procs import serving

from routectl.runtime.app import create_app
from routectl.runtime.cors import cors_mount
from routectl.table import dump_table

pytestmark = pytest.mark.e2e

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # the machine's network is closed: no update checks
    "--disable-component-update",
    "--disable-sync",
)

PAGE = """<!doctype html><html><body><script>
const GW = "http://127.0.0.1:%(gateway)d";
const AUTH = {"Authorization": "Bearer %(key)s"};
async function run() {
  const out = {};
  try {
    const headers = {...AUTH, "Content-Type": "application/json",
                     "x-stainless-lang": "js", "x-stainless-retry-count": "0"};
    const body = {model: "echo/e1", messages: [{role: "user", content: "hello from a page"}]};
    const reply = await fetch(GW + "/v1/chat/completions",
                              {method: "POST", headers, body: JSON.stringify(body)});
    out.status = reply.status;
    out.content = (await reply.json()).choices[0].message.content;
    out.selected = reply.headers.get("x-routectl-selected-model");
    out.requestId = reply.headers.get("x-request-id");
    const stream = await fetch(GW + "/v1/chat/completions", {method: "POST", headers,
        body: JSON.stringify({...body, stream: true})});
    out.streamEvents = (await stream.text()).split("data: ").length - 1;
    const missing = await fetch(GW + "/v1/models/nope%%2Fnone", {headers: AUTH});
    out.errorStatus = missing.status;
    out.errorRetry = missing.headers.get("x-should-retry");
    out.errorCode = (await missing.json()).error.code;
  } catch (err) {
    out.error = String(err);
  }
  await fetch("/result", {method: "POST", body: JSON.stringify(out)});
}
run();
</script></body></html>"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:  # not a skip: `make test` installs it, and a browser test must run
        pytest.fail("Debian's chromium is not installed (make test installs it as root)")
    return found


class Page:
    """A page server on its own origin; collects what the page reports."""

    def __init__(self, gateway_port: int) -> None:
        self.html = PAGE % {"gateway": gateway_port, "key": KEYS["carol"]}
        self.results: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=self.html, content_type="text/html")

    async def result(self, request: web.Request) -> web.StreamResponse:
        await self.results.put(json.loads(await request.text()))
        return web.Response(status=204)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.index)
        app.router.add_post("/result", self.result)
        return app


def visit(loop_thread: LoopThread, page: Page, port: int, profile: Path) -> dict[str, Any]:
    """Open the page in headless Chromium; what its script reported."""
    argv = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"http://127.0.0.1:{port}/"]
    browser = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        found: dict[str, Any] = loop_thread.run(asyncio.wait_for(page.results.get(), 60), 65)
        return found
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()


@pytest.fixture
def table_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "routing_table.json"
    path.write_bytes(dump_table(make_table())[0])
    yield path


@pytest.mark.slow
def test_a_page_on_an_allowed_origin_calls_the_gateway(
    loop_thread: LoopThread, table_file: Path, tmp_path: Path
) -> None:
    allowed, refused = Page(0), Page(0)
    runners = [loop_thread.start(p.app()) for p in (allowed, refused)]
    (_, allowed_port), (_, refused_port) = runners
    origin = f"http://127.0.0.1:{allowed_port}"
    try:
        with serving(table_file, tmp_path / "serve.log", "--cors-origin", origin) as gw:
            for page in (allowed, refused):
                page.html = PAGE % {"gateway": gw.port, "key": KEYS["carol"]}
            seen = visit(loop_thread, allowed, allowed_port, tmp_path / "profile-a")
            assert "error" not in seen, seen
            assert seen["status"] == 200 and seen["content"] == "hello from a page"
            # exposed headers are readable from the page
            assert seen["selected"] == "echo/e1" and seen["requestId"]
            assert seen["streamEvents"] >= 5  # role, words, finish, [DONE]
            assert (seen["errorStatus"], seen["errorCode"], seen["errorRetry"]) == (
                404,
                "model_not_found",
                "false",
            )
            blocked = visit(loop_thread, refused, refused_port, tmp_path / "profile-b")
            assert blocked.get("error", "").startswith("TypeError")  # "Failed to fetch"
            assert "status" not in blocked
    finally:
        for runner, _ in runners:
            loop_thread.stop(runner)


def preflight(port: int, origin: str, headers: str) -> tuple[int, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(
        "OPTIONS",
        "/v1/chat/completions",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": headers,
        },
    )
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}


def test_preflight_allows_the_sdks_headers_and_cors_is_off_by_default(
    loop_thread: LoopThread,
) -> None:
    table = make_table()
    plain = create_app(table)
    with_cors = create_app(table, mounts=[cors_mount(["https://chat.example"])])
    started = [loop_thread.start(app) for app in (plain, with_cors)]
    (_, plain_port), (_, cors_port) = started
    asked = "Authorization, Content-Type, X-Stainless-OS, x-stainless-retry-count, anthropic-version, x-evil"
    try:
        status, headers = preflight(cors_port, "https://chat.example", asked)
        assert status == 204
        assert headers["access-control-allow-origin"] == "https://chat.example"
        assert headers["access-control-allow-headers"] == (
            "authorization, content-type, x-stainless-os, x-stainless-retry-count,"
            " anthropic-version"
        )
        assert "POST" in headers["access-control-allow-methods"]
        status, headers = preflight(cors_port, "https://other.example", asked)
        assert status == 405 and "access-control-allow-origin" not in headers
        status, headers = preflight(plain_port, "https://chat.example", asked)
        assert status == 405 and "access-control-allow-origin" not in headers  # off by default
    finally:
        for runner, _ in started:
            loop_thread.stop(runner)
