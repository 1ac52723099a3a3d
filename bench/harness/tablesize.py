"""The table-size figure: a 10,000-collection table, its load time, and the runtime's RSS with it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from routectl.table import Collection, dump_table, load_table

# Run in a fresh interpreter so RSS is the runtime's alone: import, load (hash verified), build the app.
_MEASURE = r"""
import json, sys, time
t0 = time.perf_counter()
from routectl.table import load_table
from aiohttp import web  # noqa: F401  (imported before timing, as serve has it loaded)
t1 = time.perf_counter()
table = load_table(sys.argv[1])
t2 = time.perf_counter()
app_s, note = None, ""
try:
    from routectl.runtime.app import create_app
    t3 = time.perf_counter()
    create_app(table)
    app_s = time.perf_counter() - t3
except Exception as exc:  # the runtime may not exist yet; say so
    note = f"create_app failed: {exc!r}"[:200]
status = open("/proc/self/status").read().splitlines()
kb = {l.split(":")[0]: int(l.split()[1]) for l in status if l.startswith(("VmHWM", "VmRSS"))}
print(json.dumps({"collections": len(table.collections), "import_s": t1 - t0, "load_s": t2 - t1,
                  "app_s": app_s, "hwm_kb": kb["VmHWM"], "rss_kb": kb["VmRSS"], "note": note}))
"""


@dataclass(frozen=True)
class TableFigure:
    """Load time and memory of one table in a fresh runtime interpreter."""

    label: str
    collections: int
    file_mb: float
    load_s: float
    app_s: float | None
    peak_rss_mb: float
    note: str
    serve_ready_s: float | None = None
    serve_peak_mb: float | None = None
    serve_rss_mb: float | None = None  # once ready: the load's transient objects are gone


def build_big_table(base_table: Path, n: int, out: Path) -> Path:
    """Clone the bench table's collections into `n` collections (half system, half organization)."""
    base = load_table(base_table)
    templates = sorted(base.collections.values(), key=lambda c: c.name)
    collections: dict[str, Collection] = {}
    aliases: dict[str, str] = {}
    for i in range(n):
        tpl = templates[i % len(templates)]
        name = f"bulk-{i:05d}"
        collections[name] = dataclasses.replace(
            tpl, name=name, aliases=(), display_name=f"Bulk {i}"
        )
        if tpl.scope == "system":
            aliases[name] = name
    table = dataclasses.replace(base, collections=collections, aliases=aliases, sha256="")
    raw, _ = dump_table(table)
    out.write_bytes(raw)
    return out


def measure_load(label: str, table: Path) -> TableFigure:
    """Load `table` and build the app in a fresh interpreter; time and peak RSS."""
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(table)], capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(f"table load failed: {result.stderr[-1500:]}")
    d = json.loads(result.stdout.strip().splitlines()[-1])
    return TableFigure(
        label=label,
        collections=int(d["collections"]),
        file_mb=table.stat().st_size / 1e6,
        load_s=float(d["load_s"]),
        app_s=None if d["app_s"] is None else float(d["app_s"]),
        peak_rss_mb=int(d["hwm_kb"]) / 1024.0,
        note=str(d["note"]),
    )


def with_serve(fig: TableFigure, ready_s: float, peak_kb: int, rss_kb: int) -> TableFigure:
    """The figure plus `routectl serve`'s time to ready, its peak RSS and its RSS once ready."""
    return dataclasses.replace(
        fig, serve_ready_s=ready_s, serve_peak_mb=peak_kb / 1024.0, serve_rss_mb=rss_kb / 1024.0
    )
