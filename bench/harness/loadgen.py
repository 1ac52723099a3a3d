"""The Python load generator: the fallback when wrk is missing, and the time-to-first-chunk probe.

Run as its own (pinned) process and prints one JSON line:
  python bench/harness/loadgen.py load --url U --body-file F [--header 'K: V'] -c 64 -d 5
  python bench/harness/loadgen.py ttfc --url U --body-file F [--header 'K: V'] -d 2
`load` keeps `-c` requests in flight over aiohttp keep-alive connections for `-d` seconds.
`ttfc` sends streaming requests one at a time over one raw keep-alive socket and times the first
SSE `data:` bytes and the end of the response; raw sockets keep the client's own cost small and fixed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from urllib.parse import urlsplit


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(pct / 100.0 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def _headers(raw: list[str]) -> dict[str, str]:
    out = {"Content-Type": "application/json"}
    for h in raw:
        name, _, value = h.partition(":")
        out[name.strip()] = value.strip()
    return out


async def run_load(
    url: str, body: bytes, headers: dict[str, str], conc: int, duration: float
) -> dict[str, object]:
    """Closed-loop load: conc workers, each sending the next request when the last one is read."""
    import aiohttp

    latencies: list[float] = []
    errors = {"connect": 0, "read": 0, "status": 0, "timeout": 0}
    connector = aiohttp.TCPConnector(limit=conc)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        deadline = start + duration

        async def worker() -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        if resp.status >= 400:
                            errors["status"] += 1
                except aiohttp.ClientConnectorError:
                    errors["connect"] += 1
                    await asyncio.sleep(0.01)
                    continue
                except (aiohttp.ClientError, OSError):
                    errors["read"] += 1
                    continue
                except TimeoutError:
                    errors["timeout"] += 1
                    continue
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(conc)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    ms = [x * 1000.0 for x in latencies]
    return {
        "requests": len(latencies) + errors["status"],
        "duration_s": elapsed,
        "errors": errors,
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "mean_ms": sum(ms) / len(ms) if ms else 0.0,
        "max_ms": ms[-1] if ms else 0.0,
    }


class _Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def ensure(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    def drop(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _one_stream(conn: _Conn, request: bytes) -> tuple[float, float, int]:
    """Send one request; (seconds to first `data:`, seconds to the end, status)."""
    reader, writer = await conn.ensure()
    t0 = time.perf_counter()
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = {
        k.strip().lower(): v.strip().lower()
        for k, _, v in (x.partition(":") for x in lines[1:] if x)
    }
    first: float | None = None
    keep = fields.get("connection") != "close"
    if "chunked" in fields.get("transfer-encoding", ""):
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()  # the CRLF after the last chunk
                break
            data = await reader.readexactly(size + 2)
            if first is None and b"data:" in data:
                first = time.perf_counter()
    elif "content-length" in fields:
        data = await reader.readexactly(int(fields["content-length"]))
        first = time.perf_counter()
    else:
        await reader.read()  # close-delimited
        first = time.perf_counter()
        keep = False
    end = time.perf_counter()
    if not keep:
        conn.drop()
    return (first or end) - t0, end - t0, status


async def run_ttfc(
    url: str, body: bytes, headers: dict[str, str], duration: float
) -> dict[str, object]:
    """Sequential streaming requests for `duration` seconds: time to first chunk and to the end."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = head.encode() + b"\r\n" + body
    conn = _Conn(host, port)
    firsts: list[float] = []
    ends: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    while time.perf_counter() < deadline:
        try:
            first, end, status = await asyncio.wait_for(_one_stream(conn, request), 10)
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
            TimeoutError,
        ):
            errors += 1
            conn.drop()
            continue
        if status != 200:
            errors += 1
            continue
        firsts.append(first * 1000.0)
        ends.append(end * 1000.0)
    conn.drop()
    firsts.sort()
    ends.sort()
    return {
        "requests": len(firsts),
        "errors": errors,
        "ttfc_p50_ms": percentile(firsts, 50),
        "ttfc_p99_ms": percentile(firsts, 99),
        "total_p50_ms": percentile(ends, 50),
        "total_p99_ms": percentile(ends, 99),
    }


def main() -> None:
    """Parse arguments, run one measurement, print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["load", "ttfc"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body-file", required=True, type=Path)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("-d", "--duration", type=float, default=5.0)
    args = parser.parse_args()
    body = args.body_file.read_bytes()
    headers = _headers(args.header)
    if args.mode == "load":
        coro = run_load(args.url, body, headers, args.concurrency, args.duration)
    else:
        coro = run_ttfc(args.url, body, headers, args.duration)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(coro)
    else:
        result = uvloop.run(coro)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
