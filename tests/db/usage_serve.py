"""A real `routectl serve` feeding a real PostgreSQL: the table, the server and the traffic that the
request_logs tests (and the dashboard's screenshot) share."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from routectl.compiler import build_table
from routectl.compiler.db.apply import execute_file
from routectl.compiler.db.outputs import sql_outputs
from routectl.table import RoutingTable, dump_table

ROUTECTL = str(Path(sys.executable).with_name("routectl"))
KEYS = {"alice": "rk-test-alice", "bob": "rk-test-bob", "carol": "rk-test-carol"}
# prices per million tokens, so that the costs of a few short requests are visible
PRICES = {"echo/fast-a": (300.0, 600.0), "echo/fast-b": (100.0, 200.0), "echo/big": (50.0, 80.0)}


def _digest(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def usage_yaml(dead_port: int) -> str:
    """alice and bob in acme-corp, carol alone; echo models with prices; a provider on a closed
    port (every call to it is a connect_error) first in the `steady` collection."""
    models = "\n".join(
        f"  {m}: {{context_window: 100000, pricing: {{input_per_mtok: {i}, output_per_mtok: {o}}},"
        " trust_level: 50}"
        for m, (i, o) in PRICES.items()
    )
    return f"""
version: 1
organizations:
  acme-corp: {{display_name: Acme Corp, members: [alice, bob]}}
users:
  alice: {{display_name: Alice, api_keys: ["{_digest(KEYS["alice"])}"]}}
  bob: {{display_name: Bob, api_keys: ["{_digest(KEYS["bob"])}"]}}
  carol: {{display_name: Carol, api_keys: ["{_digest(KEYS["carol"])}"]}}
providers:
  echo: {{api: echo}}
  gone: {{api: openai, base_url: "http://127.0.0.1:{dead_port}/v1"}}
models:
{models}
  gone/m1: {{context_window: 100000, pricing: {{input_per_mtok: 1, output_per_mtok: 1}}, trust_level: 50}}
connections:
  - {{id: platform-echo, owner: platform, provider: echo, models: [echo/fast-a, echo/fast-b, echo/big]}}
  - {{id: platform-gone, owner: platform, provider: gone, models: [gone/m1], credentials: {{api_key_env: GONE_KEY}}}}
collections:
  flash2.5:
    display_name: Flash 2.5
    scope: system
    strategy: round_robin
    members: [{{model: echo/fast-a}}, {{model: echo/fast-b}}]
  org-shared-models:
    display_name: Org shared models
    scope: organization
    owner: acme-corp
    strategy: least_used
    members: [{{model: echo/fast-a}}, {{model: echo/fast-b}}, {{model: echo/big}}]
  steady:
    display_name: Steady
    scope: system
    strategy: priority
    members: [{{model: gone/m1, priority: 10}}, {{model: echo/big}}]
  split:
    display_name: Split
    scope: system
    strategy: weighted
    members: [{{model: echo/fast-a, weight: 0.75}}, {{model: echo/fast-b, weight: 0.25}}]
"""


ENV = {"GONE_KEY": "sk-gone"}


def usage_table() -> RoutingTable:
    return build_table(text=usage_yaml(free_port()))


def prepare_database(url: str, table: RoutingTable) -> None:
    """The generated schema and rows of `table` (its seed), request_logs included."""
    with psycopg.connect(url, autocommit=True) as conn:
        execute_file(conn, sql_outputs(None, table, {})["seed.sql"].decode())


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    stream: bool = False
    usage: dict[str, int] = field(default_factory=dict)


@dataclass
class Serve:
    """A running `routectl serve`."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def call(
        self,
        model: str,
        who: str = "carol",
        *,
        stream: bool = False,
        key: str | None = None,
        path: str = "/v1/chat/completions",
    ) -> Answer:
        """One chat completion (http.client: the exact headers and bytes are what is checked)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": "how many tokens is this"}],
        }
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        try:
            conn.request(
                "POST",
                path,
                json.dumps(body),
                {
                    "Authorization": f"Bearer {key if key is not None else KEYS[who]}",
                    "Content-Type": "application/json",
                },
            )
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        if not stream or resp.status != 200:
            return Answer(resp.status, headers, json.loads(raw))
        usage: dict[str, int] = {}
        for line in raw.splitlines():
            if line.startswith(b"data: {"):
                event = json.loads(line[6:])
                if event.get("usage"):
                    usage = event["usage"]
        return Answer(resp.status, headers, {}, stream=True, usage=usage)

    def get(self, path: str, key: str | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            conn.request("GET", path, headers={"Authorization": f"Bearer {key}"} if key else {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def metric(self, name: str) -> float:
        """The value of one unlabelled sample of /metrics."""
        _, text = self.get("/metrics")
        for line in text.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not in /metrics")

    def records(self) -> list[dict[str, Any]]:
        """The access-log records of routed requests the server wrote so far."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("path") == "/v1/chat/completions":
                    out.append(record)
        return out


def _wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, "routectl serve exited"
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("routectl serve did not become ready")


@contextmanager
def serving(
    table: RoutingTable, folder: Path, *args: str, env: Mapping[str, str] | None = None
) -> Iterator[Serve]:
    """`routectl serve` of `table` with ARGS on a free port; SIGTERM (drain, flush) after."""
    raw, _ = dump_table(table)
    path = folder / "routing_table.json"
    path.write_bytes(raw)
    port = free_port()
    log = folder / f"serve-{port}.log"
    argv = [ROUTECTL, "serve", "--table", str(path), "--port", str(port), *args]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=out, env={**os.environ, **ENV, **(env or {})}
        )
        try:
            _wait_ready(port, proc)
            yield Serve(proc, port, log)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def traffic(s: Serve) -> list[Answer]:
    """The mix every request_logs test sends: collections by several callers, streamed and not,
    a fallback, and two refusals (an unknown key, an unknown model)."""
    answers = [s.call("collection/flash2.5") for _ in range(12)]
    answers += [s.call("collection/flash2.5", stream=True) for _ in range(3)]
    answers += [s.call("collection/org-shared-models", who) for who in ("alice", "bob") * 3]
    answers += [s.call("collection/split", "alice") for _ in range(8)]
    answers += [s.call("collection/steady", "bob") for _ in range(2)]
    answers += [s.call("echo/big", "carol")]
    answers.append(s.call("collection/flash2.5", key="rk-unknown"))
    answers.append(s.call("no/such-model"))
    return answers


def count_rows(url: str) -> int:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM request_logs").fetchone()
        return int(row[0]) if row else 0


def wait_rows(url: str, n: int, timeout: float = 30.0) -> int:
    """Poll until request_logs holds `n` rows (or the time is up); the last count."""
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        try:
            count = count_rows(url)
        except psycopg.OperationalError:
            count = -1
        if count >= n:
            return count
        time.sleep(0.2)
    return count
