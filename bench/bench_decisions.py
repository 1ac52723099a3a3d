"""Micro-benchmark: one routing decision (resolve + plan_request + commit) per strategy.

A 20-member collection served by two connections per model; prints a Markdown table of the
median microseconds per decision (goal: under 10 us). Run: `.venv/bin/python bench/bench_decisions.py`.
"""

from __future__ import annotations

import hashlib
import random
import statistics
import sys
import time

from routectl.compiler import build_table
from routectl.runtime.index import TableIndex
from routectl.runtime.plan import RequestFacts, plan_request
from routectl.runtime.resolve import resolve
from routectl.runtime.state import RoutingState
from routectl.table import STRATEGY_NAMES

STRATEGIES = STRATEGY_NAMES
MEMBERS = 20
BATCH = 2000
ROUNDS = 25


def config() -> str:
    key = "sha256:" + hashlib.sha256(b"bench-key").hexdigest()
    models = "\n".join(
        f"  echo/m{i}: {{context_window: 100000, pricing: {{input_per_mtok: {i % 7}, output_per_mtok: {i % 5}}},"
        f" capabilities: [tools], trust_level: {40 + i % 9}}}"
        for i in range(MEMBERS)
    )
    ids = ", ".join(f"echo/m{i}" for i in range(MEMBERS))
    members = ", ".join(
        f"{{model: echo/m{i}, weight: {round(0.05 + (i % 10) / 10, 3)}, priority: {i % 3}}}"
        for i in range(MEMBERS)
    )
    collections = "\n".join(
        f"  c-{s.replace('_', '-')}:\n    scope: system\n    strategy: {s}\n    members: [{members}]"
        for s in STRATEGIES
    )
    return f"""
version: 1
organizations:
  org: {{display_name: Org, members: [user]}}
users:
  user: {{display_name: User, api_keys: ["{key}"]}}
providers:
  echo: {{api: echo}}
models:
{models}
connections:
  - {{id: org-echo, owner: org, provider: echo, models: [{ids}]}}
  - {{id: platform-echo, owner: platform, provider: echo, models: [{ids}]}}
collections:
{collections}
"""


def main() -> int:
    table = build_table(text=config())
    index = TableIndex(table)
    caller = index.callers["user"]
    facts = RequestFacts(prompt_tokens=200, needs_tools=False)
    rows = []
    for strategy in STRATEGIES:
        state = RoutingState(clock=time.time, rng=random.Random(1))
        state.configure(table, {})
        for i in range(0, MEMBERS, 2):  # half the members measured, for latency_optimized
            state.record_latency("platform-echo", f"echo/m{i}", 0.1 + i / 100)
        name = f"collection/c-{strategy.replace('_', '-')}"
        samples = []
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            for _ in range(BATCH):
                route = resolve(index, caller, name).route
                plan_request(index, state, caller, route, facts)
            samples.append((time.perf_counter() - t0) / BATCH * 1e6)
        rows.append((strategy, statistics.median(samples), min(samples)))
    print(f"One routing decision (resolve + plan_request + commit), {MEMBERS}-member collection,")
    print(f"Python {sys.version.split()[0]}; median and best of {ROUNDS} rounds of {BATCH}.\n")
    print("| strategy | median us | best us |")
    print("|---|---:|---:|")
    for strategy, median, best in rows:
        print(f"| {strategy} | {median:.2f} | {best:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
