"""Drive a target: wrk with a Lua script (POST body, headers, percentiles as JSON) or the Python fallback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.procs import pinned

WRK = shutil.which("wrk")
LOADGEN = Path(__file__).with_name("loadgen.py")

_LUA_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"mean":%f,"max":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


@dataclass(frozen=True)
class LoadResult:
    """One closed-loop run: completed requests, errors and latency percentiles."""

    requests: int
    duration_s: float
    errors: int  # connect/read/write/timeout errors and non-2xx/3xx answers
    p50_ms: float
    p90_ms: float
    p99_ms: float
    tool: str

    @property
    def rps(self) -> float:
        """Requests per second over the run."""
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0


@dataclass(frozen=True)
class TtfcResult:
    """Sequential streaming requests: time to the first SSE chunk and to the end of the stream."""

    requests: int
    errors: int
    ttfc_p50_ms: float
    ttfc_p99_ms: float
    total_p50_ms: float


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for this text


def lua_script(body: bytes, headers: Mapping[str, str]) -> str:
    """The wrk script: POST `body` with `headers`, and a done() that prints percentiles as JSON."""
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body.decode())}"]
    lines.append('wrk.headers["Content-Type"] = "application/json"')
    lines += [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()]
    return "\n".join(lines) + "\n" + _LUA_DONE


def parse_wrk(output: str) -> LoadResult:
    """Read the WRKJSON line that the script's done() printed."""
    for line in output.splitlines():
        if line.startswith("WRKJSON "):
            d = json.loads(line[len("WRKJSON ") :])
            errors = sum(int(d[k]) for k in ("connect", "read", "write", "status", "timeout"))
            return LoadResult(
                requests=int(d["requests"]),
                duration_s=int(d["duration_us"]) / 1e6,
                errors=errors,
                p50_ms=int(d["p50"]) / 1000.0,
                p90_ms=int(d["p90"]) / 1000.0,
                p99_ms=int(d["p99"]) / 1000.0,
                tool="wrk",
            )
    raise RuntimeError(f"wrk printed no result:\n{output[-2000:]}")


class Driver:
    """Runs load and TTFC probes from the load generator's CPU, writing scripts into work_dir."""

    def __init__(self, work_dir: Path, cpus: str | None, use_wrk: bool = True) -> None:
        self.work_dir = work_dir
        self.cpus = cpus
        self.use_wrk = use_wrk and WRK is not None
        self._n = 0

    @property
    def tool(self) -> str:
        """The load generator in use."""
        return "wrk" if self.use_wrk else "python-aiohttp"

    def _file(self, suffix: str, content: str | bytes) -> Path:
        self._n += 1
        path = self.work_dir / f"load{self._n}{suffix}"
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
        return path

    def load(
        self, url: str, body: bytes, headers: Mapping[str, str], conc: int, duration_s: float
    ) -> LoadResult:
        """A closed-loop run at `conc` connections for `duration_s` seconds."""
        if self.use_wrk and WRK is not None:
            script = self._file(".lua", lua_script(body, headers))
            # wrk takes whole seconds only
            seconds = max(1, round(duration_s))
            argv = [
                WRK,
                "-t1",
                f"-c{conc}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                url,
            ]
            out = subprocess.run(
                pinned(argv, self.cpus), capture_output=True, text=True, timeout=duration_s + 30
            )
            return parse_wrk(out.stdout + out.stderr)
        d = self._pyload("load", url, body, headers, conc, duration_s)
        errors = d["errors"]
        return LoadResult(
            requests=int(d["requests"]),
            duration_s=float(d["duration_s"]),
            errors=sum(int(v) for v in errors.values()),
            p50_ms=float(d["p50_ms"]),
            p90_ms=float(d["p90_ms"]),
            p99_ms=float(d["p99_ms"]),
            tool="python-aiohttp",
        )

    def ttfc(
        self, url: str, body: bytes, headers: Mapping[str, str], duration_s: float
    ) -> TtfcResult:
        """Sequential streaming requests: time to first chunk."""
        d = self._pyload("ttfc", url, body, headers, 1, duration_s)
        return TtfcResult(
            requests=int(d["requests"]),
            errors=int(d["errors"]),
            ttfc_p50_ms=float(d["ttfc_p50_ms"]),
            ttfc_p99_ms=float(d["ttfc_p99_ms"]),
            total_p50_ms=float(d["total_p50_ms"]),
        )

    def _pyload(
        self,
        mode: str,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        conc: int,
        duration_s: float,
    ) -> dict[str, Any]:
        body_file = self._file(".json", body)
        argv = [sys.executable, str(LOADGEN), mode, "--url", url, "--body-file", str(body_file)]
        argv += [f"--header={k}: {v}" for k, v in headers.items()]
        argv += ["-c", str(conc), "-d", f"{duration_s:g}"]
        out = subprocess.run(
            pinned(argv, self.cpus), capture_output=True, text=True, timeout=duration_s + 60
        )
        if out.returncode != 0:
            raise RuntimeError(f"load generator failed: {out.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result
