"""Benchmark `routectl compile` on generated configs of 100, 1,000 and 10,000 collections.

Each collection has 10 members. Every size is compiled as a subprocess a few times into a fresh
output directory; the table shows the median wall time, the peak RSS of the compile process, and
the cost per collection, so linear growth is visible. Not a pytest test: run `make bench` or
`python bench/bench_compile.py [--sizes 100,1000] [--runs 3]`.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROVIDERS = ("openai", "anthropic", "groq", "google", "echo")
MODELS_PER_PROVIDER = 10
MEMBERS = 10
USERS = 50
ORGS = 5


def make_config(collections: int) -> str:
    """A valid routing.yaml with `collections` collections of 10 members each."""
    lines = ["version: 1", "organizations:"]
    for o in range(ORGS):
        members = ", ".join(f"user-{u}" for u in range(USERS) if u % ORGS == o)
        lines.append(f"  org-{o}: {{display_name: Org {o}, members: [{members}]}}")
    lines.append("users:")
    for u in range(USERS):
        digest = f"sha256:{u:064x}"
        lines.append(f'  user-{u}: {{display_name: User {u}, api_keys: ["{digest}"]}}')
    lines.append("providers:")
    for p in PROVIDERS:
        if p == "echo":
            lines.append("  echo: {api: echo}")
        else:
            lines.append(f'  {p}: {{api: openai, base_url: "https://{p}.example/v1"}}')
    lines.append("models:")
    model_ids = [f"{p}/m-{i}" for p in PROVIDERS for i in range(MODELS_PER_PROVIDER)]
    for k, mid in enumerate(model_ids):
        lines.append(
            f"  {mid}: {{context_window: 128000, pricing: {{input_per_mtok: {k % 7}, "
            f"output_per_mtok: {k % 5}}}, capabilities: [tools], trust_level: {50 + k % 50}}}"
        )
    lines.append("connections:")
    for p in PROVIDERS:
        models = ", ".join(m for m in model_ids if m.startswith(f"{p}/"))
        creds = "" if p == "echo" else f", credentials: {{api_key_env: {p.upper()}_KEY}}"
        lines.append(
            f"  - {{id: platform-{p}, owner: platform, provider: {p}, models: [{models}]{creds}}}"
        )
        lines.append(
            f"  - {{id: org-0-{p}, owner: org-0, provider: {p}, models: [{models}]{creds}}}"
        )
    lines.append("collections:")
    strategies = ("round_robin", "weighted", "least_used", "fallback", "random")
    for c in range(collections):
        scope = "system" if c % 3 else "organization"
        lines.append(f"  coll-{c}:")
        lines.append(f"    display_name: Collection {c}")
        lines.append(f"    scope: {scope}")
        if scope == "organization":
            lines.append("    owner: org-0")
        lines.append(f"    strategy: {strategies[c % len(strategies)]}")
        lines.append("    members:")
        for j in range(MEMBERS):
            mid = model_ids[(c * 7 + j * 3) % len(model_ids)]
            model = f"org-0/{mid}" if scope == "organization" and j == 0 else mid
            weight = round(0.1 + (j % 9) / 10, 3)
            lines.append(f"      - {{model: {model}, weight: {weight}, priority: {j % 3}}}")
    return "\n".join(lines) + "\n"


def _compile(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one compile; wait4 gives this child's own rusage.

    CPU time (user + system) is reported next to wall time because it barely moves when other
    processes share the machine, while wall time does.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"compile failed ({proc.returncode}): {' '.join(argv)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # KiB on Linux


def run(sizes: list[int], runs: int, budget_s: float) -> tuple[str, list[str]]:
    """Compile each size up to `runs` times within `budget_s`; the Markdown table and notes."""
    routectl = shutil.which("routectl", path=str(Path(sys.executable).parent)) or "routectl"
    rows = [
        "| collections | members | YAML size | runs | median wall (s) | median CPU (s) "
        "| peak RSS (MB) | µs per collection |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes: list[str] = []
    deadline = time.monotonic() + budget_s
    per_collection = 0.0
    with tempfile.TemporaryDirectory(prefix="routectl-bench-") as tmp:
        for size in sizes:
            # cost grows linearly, so the last size's cost per collection predicts this one's
            estimate = per_collection * size
            left = deadline - time.monotonic()
            planned = max(1, min(runs, int(left // estimate) if estimate else runs))
            if estimate > left:
                notes.append(
                    f"{size:,} collections skipped: about {estimate:.0f} s, {left:.0f} s left"
                )
                continue
            config = Path(tmp) / f"routing-{size}.yaml"
            config.write_text(make_config(size), encoding="utf-8")
            times: list[float] = []
            cpus: list[float] = []
            peak = 0.0
            for r in range(planned):
                out = Path(tmp) / f"out-{size}-{r}"
                wall, cpu, rss = _compile(
                    [routectl, "compile", str(config), "--out", str(out)],
                    {**os.environ, "PYTHONHASHSEED": str(r)},
                )
                times.append(wall)
                cpus.append(cpu)
                peak = max(peak, rss)
                shutil.rmtree(out)
            wall = statistics.median(times)
            cpu = statistics.median(cpus)
            per_collection = wall / size
            kib = config.stat().st_size / 1024
            rows.append(
                f"| {size:,} | {size * MEMBERS:,} | {kib:,.0f} KiB | {planned} | {wall:.2f} "
                f"| {cpu:.2f} | {peak:.0f} | {per_collection * 1e6:,.0f} |"
            )
            print(rows[-1], file=sys.stderr, flush=True)  # progress
    return "\n".join(rows), notes


_IMPORTS = (
    "import time; t = time.perf_counter(); "
    "import routectl.cli, routectl.compiler, routectl.compiler.generate; "
    "print(time.perf_counter() - t)"
)


def phases(size: int) -> str:
    """Where one compile of `size` collections spends its time, measured in this process.

    The first row is the import of what `routectl compile` loads, timed in a fresh interpreter
    (this process has imported it already).
    """
    from routectl.compiler.db.compare import compare_rows
    from routectl.compiler.db.render import render_migration, render_seed
    from routectl.compiler.db.rows import table_rows
    from routectl.compiler.loader import load_document
    from routectl.compiler.lower import lower
    from routectl.compiler.model import RoutingConfig
    from routectl.compiler.validate import check_meaning
    from routectl.table import dump_table

    imports = subprocess.run(
        [sys.executable, "-c", _IMPORTS], capture_output=True, text=True, check=True
    )
    text = make_config(size)
    timings = [("imports (fresh process)", float(imports.stdout))]
    # as in `routectl compile`, which pauses the cyclic GC around the same work
    gc.disable()

    # the steps of analyze(), timed one by one
    start = time.perf_counter()
    doc = load_document(text)
    loaded = time.perf_counter()
    config = RoutingConfig.model_validate(doc.data)
    diagnostics = check_meaning(doc)
    assert not diagnostics, diagnostics
    timings.append(("YAML load", loaded - start))
    timings.append(("validate (models + meaning checks)", time.perf_counter() - loaded))

    marks = [("lower", time.perf_counter())]
    table = lower(config)
    marks.append(("dump table", time.perf_counter()))
    sha = dump_table(table)[1]
    marks.append(("SQL rows + diff", time.perf_counter()))
    rows = table_rows(table)
    ops = compare_rows(table_rows(None), rows)
    marks.append(("SQL render (first migration)", time.perf_counter()))
    render_migration(number=1, name="0001_initial", from_hash=None, to_hash=sha, ops=ops)
    marks.append(("SQL render (seed)", time.perf_counter()))
    render_seed(table, to_hash=sha, number=1, rows=rows)
    marks.append(("", time.perf_counter()))
    timings += [(name, end - begin) for (name, begin), (_, end) in itertools.pairwise(marks)]
    gc.enable()

    out = [f"| phase ({size:,} collections) | seconds |", "|---|---:|"]
    out += [f"| {name} | {seconds:.2f} |" for name, seconds in timings]
    out.append(f"| **total** | **{sum(s for _, s in timings):.2f}** |")
    return "\n".join(out)


def main() -> None:
    """Parse arguments, run, print the tables."""
    quick = os.environ.get("BENCH_QUICK") == "1"
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000" if quick else "100,1000,10000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds for all compiles")
    parser.add_argument(
        "--phases", type=int, default=1000, help="size of the phase breakdown (0: none)"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    table, notes = run(sizes, args.runs, args.budget)
    print(table)
    for note in notes:
        print(f"\n{note}")
    if args.phases:
        print()
        print(phases(args.phases))


if __name__ == "__main__":
    main()
