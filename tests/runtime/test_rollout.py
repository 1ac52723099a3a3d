"""The rollout proof on one machine (issue 10): three `routectl serve --watch` replicas, separate
processes sharing one mounted table folder, under steady load the way a Service spreads it.

1. the table is swapped by kubelet's ConfigMap symlink dance: every replica's `/readyz` hash
   switches, and every request started after its replica switched carries the new hash;
2. a corrupt table is swapped in: all three refuse it (log, metric, `/readyz` detail) and keep
   serving the previous hash;
3. one replica gets SIGTERM mid-stream: `/readyz` 503 at once, its stream completes, exit 0;
and not one request fails meanwhile. `make rollout-test` runs this alone and prints the figures.
"""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import KEYS, FakeUpstream, make_table
from procs import ConfigMapDir, Served, open_stream, readyz, serving, stream_rest
from test_drain import CHUNKS, long_stream
from test_serve import EXTRA, LU

from routectl.runtime.watch import WATCH_INTERVAL
from routectl.table import dump_table

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPLICAS = 3
CLIENTS = 4  # threads sending requests back to back
WAIT = 15.0  # generous bound for anything awaited below


@dataclass(frozen=True)
class Outcome:
    started: float
    port: int
    status: int  # 0: the request failed (no answer)
    table: str
    error: str = ""


class Load:
    """Steady load over the replicas in `targets`, one new connection per request (a Service
    balances connections)."""

    def __init__(self, targets: list[int]) -> None:
        self.targets = targets
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(CLIENTS)]

    def _run(self, offset: int) -> None:
        body = json.dumps(
            {"model": "collection/lu", "messages": [{"role": "user", "content": "x"}]}
        )
        headers = {"Authorization": f"Bearer {KEYS['carol']}", "Content-Type": "application/json"}
        n = offset
        while not self._stop.is_set():
            targets = list(self.targets)
            port = targets[n % len(targets)]
            n += 1
            started = time.monotonic()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", "/v1/chat/completions", body, headers)
                resp = conn.getresponse()
                resp.read()
                conn.close()
                table = resp.getheader("x-routectl-table") or ""
                self.outcomes.append(Outcome(started, port, resp.status, table))
            except OSError as exc:
                self.outcomes.append(Outcome(started, port, 0, "", repr(exc)))

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(WAIT)


def wait_all(replicas: list[Served], done: object, what: str) -> dict[int, float]:
    """Poll every replica's /readyz until `done(body)`; when each got there (monotonic)."""
    reached: dict[int, float] = {}
    deadline = time.monotonic() + WAIT
    while len(reached) < len(replicas):
        for r in replicas:
            if r.port not in reached and done(readyz(r.port)[1]):  # type: ignore[operator]
                reached[r.port] = time.monotonic()
        assert time.monotonic() < deadline, f"not every replica {what}: {reached}"
        time.sleep(0.01)
    return reached


def scrape(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return text


def test_three_replicas_roll_a_table_out_with_no_failed_request(
    tmp_path: Path, fake: FakeUpstream
) -> None:
    raw_a, sha_a = dump_table(make_table(fake.port, collections=LU))
    raw_b, sha_b = dump_table(make_table(fake.port, collections=LU + EXTRA))
    corrupt = raw_b.replace(b'"echo/e2"', b'"echo/e9"', 1)  # edited by hand: hash mismatch
    mount = ConfigMapDir(tmp_path / "mounted")
    mount.publish(raw_a)
    long_stream(fake)
    figures: list[str] = []
    with ExitStack() as stack:
        replicas = [
            stack.enter_context(
                serving(
                    mount.path, tmp_path / f"replica{i}.log", "--watch", "--drain-seconds", "20"
                )
            )
            for i in range(REPLICAS)
        ]
        targets = [r.port for r in replicas]
        with Load(targets) as load:
            time.sleep(1.0)  # steady state on table A
            assert {o.table for o in load.outcomes} == {sha_a}

            # 1. the ConfigMap update
            swapped = time.monotonic()
            mount.publish(raw_b)
            switched = wait_all(replicas, lambda b: b["table"] == sha_b, "switched")
            for i, r in enumerate(replicas):
                figures.append(
                    f"replica {i}: /readyz hash switched {switched[r.port] - swapped:.3f} s after the swap"
                )
            time.sleep(0.5)
            during = [o for o in load.outcomes if swapped <= o.started <= max(switched.values())]
            figures.append(
                f"requests started during the swap (until the last replica switched): {len(during)}"
            )
            for o in load.outcomes:  # a request that starts after its replica switched sees B
                if o.started > switched[o.port] + 0.01:
                    assert o.table == sha_b, o

            # 2. a corrupt table: refused everywhere, B keeps serving
            mount.publish(corrupt)
            wait_all(replicas, lambda b: b.get("reload", {}).get("result") == "refused", "refused")
            refused_at = time.monotonic()
            time.sleep(0.5)
            for r in replicas:
                status, body = readyz(r.port)
                assert (status, body["table"]) == (200, sha_b)
                assert "hash mismatch" in body["reload"]["error"]
                assert 'routectl_table_reloads_total{result="refused"} 1.0' in scrape(r.port)
                assert "routing table reload refused, still serving " + sha_b in r.log_text()
            after = [o for o in load.outcomes if o.started > refused_at]
            assert after and {o.table for o in after} == {sha_b}

            # 3. SIGTERM one replica mid-stream
            stopping = replicas[1]
            conn, resp, _ = open_stream(stopping.port, "fake/m1")
            stopping.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            while readyz(stopping.port)[0] != 503:
                assert time.monotonic() - signalled < WAIT
                time.sleep(0.01)
            figures.append(f"SIGTERM -> /readyz 503 in {time.monotonic() - signalled:.3f} s")
            targets.remove(stopping.port)  # the Service drops the endpoint that is not ready
            events = stream_rest(resp)
            conn.close()
            assert events[-1] == b"data: [DONE]" and len(events) == CHUNKS + 2
            figures.append(f"stream on the stopping replica completed: {len(events) + 1} events")
            assert stopping.proc.wait(timeout=WAIT) == 0
            time.sleep(0.3)  # load goes on against the two others
        failed = [o for o in load.outcomes if o.status != 200]
        figures.append(f"requests in total: {len(load.outcomes)}, failed: {len(failed)}")
        assert not failed, failed[:5]
        assert len(load.outcomes) > 100
    assert all(v - swapped <= WATCH_INTERVAL + 5 for v in switched.values())  # loose: a loaded CI
    print("\nrollout figures:\n  " + "\n  ".join(figures))
