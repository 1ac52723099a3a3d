"""`make soak`: a bounded soak of a real `routectl serve` process (issue 13).

A fixed request rate for --seconds against a gateway whose upstream (a fake on 127.0.0.1, in
this process) injects random faults (500, 429, a hang past the timeout, HTML, a redirect, an
oversized body, a dropped stream) into a share of its answers, while the table file is
replaced every --reload-every seconds, alternately by a valid new table and by a corrupt one
(SIGHUP). Prints requests, status counts, gateway-attributable errors (goal 0), p50/p99, RSS
and open fds of the gateway at start and end, and the reloads it counted.

A gateway-attributable error is an answer the gateway should never give whatever the upstream
does: a 500, a connection it dropped or never answered, an answer that is not JSON or SSE, or a
502/503 for a collection that still has the built-in echo member to fall back on.

Usage: python tests/soak/soak.py [--seconds 180] [--rate 100] [--fault-share 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

KEY = "soak-key"
FAULTS = ("500", "429", "hang", "html", "redirect", "big", "drop")


def _yaml(port: int, revision: int) -> str:
    digest = "sha256:" + hashlib.sha256(KEY.encode()).hexdigest()
    return f"""
version: 1
defaults: {{cooldown_s: {2 + revision % 3}, allowed_fails: 5, max_attempts: 3, timeout_ms: 1500}}
users:
  soak: {{display_name: Soak, api_keys: ["{digest}"]}}
providers:
  fake: {{api: openai, base_url: "http://127.0.0.1:{port}/v1"}}
  echo: {{api: echo}}
models:
  fake/a: {{context_window: 100000}}
  fake/b: {{context_window: 100000}}
  echo/e: {{context_window: 100000, free: true}}
connections:
  - {{id: up-1, owner: platform, provider: fake, models: [fake/a, fake/b], credentials: {{api_key_env: SOAK_KEY}}}}
  - {{id: up-2, owner: platform, provider: fake, models: [fake/a], credentials: {{api_key_env: SOAK_KEY}}, priority: 1}}
  - {{id: local, owner: platform, provider: echo, models: [echo/e]}}
collections:
  safe:
    scope: system
    strategy: {("round_robin", "least_used", "weighted")[revision % 3]}
    max_attempts: 3
    members: [{{model: fake/a, priority: 2}}, {{model: fake/b, priority: 1}}, {{model: echo/e}}]
"""


class FaultyUpstream:
    def __init__(self, share: float, rng: random.Random) -> None:
        self.share = share
        self.rng = rng
        self.injected: Counter[str] = Counter()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        fault = self.rng.choice(FAULTS) if self.rng.random() < self.share else None
        if fault is not None:
            self.injected[fault] += 1
        if fault == "500":
            return web.json_response({"error": {"message": "boom"}}, status=500)
        if fault == "429":
            return web.json_response(
                {"error": {"message": "slow"}}, status=429, headers={"Retry-After": "1"}
            )
        if fault == "hang":
            await asyncio.sleep(3)  # past the table's 1.5 s timeout
        if fault == "html":
            return web.Response(text="<html>proxy error</html>", content_type="text/html")
        if fault == "redirect":
            return web.Response(status=307, headers={"Location": "http://127.0.0.1:9/"})
        if fault == "big":
            return web.Response(
                body=b'{"pad":"' + b"x" * 300_000 + b'"}', content_type="application/json"
            )
        if body.get("stream"):
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            chunk = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": body["model"],
                "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}],
            }
            for i in range(4):
                if fault == "drop" and i == 2:
                    assert request.transport is not None
                    request.transport.close()
                    return resp
                await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            return resp
        return web.json_response(
            {
                "id": "c",
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _compile(routectl: str, folder: Path, port: int, revision: int) -> bytes:
    src = folder / f"rev{revision}"
    src.mkdir()
    (src / "routing.yaml").write_text(_yaml(port, revision))
    subprocess.run(
        [routectl, "compile", "--out", str(src / "generated")],
        cwd=src,
        check=True,
        capture_output=True,
    )
    return (src / "generated" / "routing_table.json").read_bytes()


def _install(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


async def _one(
    session: aiohttp.ClientSession, url: str, rng: random.Random, out: dict[str, Any]
) -> None:
    kind = rng.choice(("safe", "safe", "safe", "stream", "model"))
    model = "fake/a" if kind == "model" else "collection/safe"
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "soak"}],
        "stream": kind == "stream",
    }
    started = time.perf_counter()
    try:
        async with session.post(url, json=body, headers={"Authorization": f"Bearer {KEY}"}) as resp:
            data = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        out["gateway_errors"].append(f"{kind}: {type(exc).__name__}")
        return
    out["latency"].append(time.perf_counter() - started)
    out["status"][status] += 1
    if status == 500 or not (data.startswith((b"{", b"data:"))):
        out["gateway_errors"].append(f"{kind}: {status} {data[:200]!r}")
    elif kind != "model" and status in (502, 503):
        out["gateway_errors"].append(f"{kind}: {status} with echo to fall back on {data[:300]!r}")
    elif kind == "model" and status >= 500:
        out["upstream_errors"] += 1  # a bare model with no fallback: the upstream's fault, shown


async def _main(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)  # the fake's own dropped streams
    routectl = str(Path(sys.executable).with_name("routectl"))
    upstream = FaultyUpstream(args.fault_share, random.Random(args.seed + 1))
    app = web.Application()
    app.router.add_post("/v1/chat/completions", upstream.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    up_port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", up_port).start()
    work = Path(tempfile.mkdtemp(prefix="routectl-soak-"))
    tables = [_compile(routectl, work, up_port, r) for r in range(3)]
    table_path = work / "routing_table.json"
    _install(table_path, tables[0])
    port = _free_port()
    log = (work / "serve.log").open("wb")
    proc = subprocess.Popen(
        [routectl, "serve", "--table", str(table_path), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env={**os.environ, "SOAK_KEY": "sk-soak"},
    )
    base = f"http://127.0.0.1:{port}"
    out: dict[str, Any] = {
        "latency": [],
        "status": Counter(),
        "gateway_errors": [],
        "upstream_errors": 0,
    }
    reloads = Counter[str]()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            for _ in range(200):
                try:
                    async with session.get(base + "/readyz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            # warm up, then take the starting figures
            await asyncio.gather(
                *(
                    _one(
                        session,
                        base + "/v1/chat/completions",
                        rng,
                        {
                            "latency": [],
                            "status": Counter(),
                            "gateway_errors": [],
                            "upstream_errors": 0,
                        },
                    )
                    for _ in range(50)
                )
            )
            rss0, fds0 = _rss_kib(proc.pid), _fds(proc.pid)
            tasks: set[asyncio.Task[None]] = set()
            started = time.monotonic()
            next_reload = started + args.reload_every
            revision = 0
            sent = 0
            while (now := time.monotonic()) < started + args.seconds:
                due = int((now - started) * args.rate)
                while sent < due:
                    task = asyncio.create_task(
                        _one(session, base + "/v1/chat/completions", rng, out)
                    )
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    sent += 1
                if now >= next_reload:
                    revision += 1
                    if revision % 2:
                        _install(table_path, tables[revision // 2 % len(tables) + 0])
                        reloads["valid"] += 1
                    else:
                        corrupt = rng.choice(
                            (
                                b"{not json",
                                tables[1][: len(tables[1]) // 2],
                                tables[1].replace(b'"strategy": "', b'"strategy": "x'),
                            )
                        )
                        _install(table_path, corrupt)
                        reloads["corrupt"] += 1
                    proc.send_signal(signal.SIGHUP)
                    next_reload += args.reload_every
                await asyncio.sleep(0.005)
            await asyncio.gather(*tasks)
            _install(table_path, tables[0])
            proc.send_signal(signal.SIGHUP)
            await asyncio.sleep(1.5)
            rss1, fds1 = _rss_kib(proc.pid), _fds(proc.pid)
            async with session.get(base + "/metrics") as r:
                metrics = await r.text()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
        await runner.cleanup()
    lat = sorted(out["latency"])
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else 0.0
    counted = [
        line for line in metrics.splitlines() if line.startswith("routectl_table_reloads_total")
    ]
    tracebacks = (work / "serve.log").read_text(errors="replace").count("Traceback")
    print(
        f"soak: {args.seconds:.0f} s at {args.rate}/s, fault share {args.fault_share}, seed {args.seed}"
    )
    print(
        f"  requests: {sent} sent, {len(lat)} answered; statuses {dict(sorted(out['status'].items()))}"
    )
    print(
        f"  faults injected upstream: {sum(upstream.injected.values())} {dict(sorted(upstream.injected.items()))}"
    )
    print(
        f"  gateway-attributable errors: {len(out['gateway_errors'])} (goal 0); "
        f"upstream errors shown on bare-model requests: {out['upstream_errors']}"
    )
    print(f"  latency: p50 {statistics.median(lat) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    print(
        f"  gateway RSS: {rss0 / 1024:.1f} MiB -> {rss1 / 1024:.1f} MiB; open fds: {fds0} -> {fds1}"
    )
    print(
        f"  table swaps: {reloads['valid']} valid, {reloads['corrupt']} corrupt; gateway counted: {'; '.join(counted)}"
    )
    print(f"  tracebacks in the gateway's log: {tracebacks}")
    for line in out["gateway_errors"][:10]:
        print("   ", line)
    return 1 if out["gateway_errors"] or tracebacks else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--fault-share", type=float, default=0.1)
    parser.add_argument("--reload-every", type=float, default=10)
    parser.add_argument("--seed", type=int, default=13)
    sys.exit(asyncio.run(_main(parser.parse_args())))


if __name__ == "__main__":
    main()
