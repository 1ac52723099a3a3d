"""The bench's output: one Markdown table, ratio lines, the issue's goals checked, the table-size figure."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from harness.load import LoadResult, TtfcResult
from harness.tablesize import TableFigure

DIRECT = "direct"
PASSTHROUGH = "passthrough"
ROUTECTL_1W = "routectl (1 worker)"
ROUTECTL_2W = "routectl (2 workers)"
ROUTECTL_LIMITS = "routectl + Redis limits (1 worker)"
AFFINITY = "round_robin + affinity"
ROUND_ROBIN = "round_robin collection"
ROUTECTL_AIOHTTP = "routectl (1 worker, aiohttp client)"
LITELLM_PREFIX = "LiteLLM"
NGINX_PREFIX = "nginx"
PORTKEY_PREFIX = "Portkey"
PROVIDER_MODEL = "provider/model"


@dataclass
class Row:
    """One measured scenario of one target."""

    target: str
    route: str
    stream: bool
    conc: int
    load: LoadResult | None = None
    ttfc: TtfcResult | None = None
    cpu_us: float | None = None
    rss_mb: float | None = None
    note: str = ""
    spread: dict[str, int] | None = None  # upstream requests per model during the row


def _f(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def _plus(x: float | None, base: float | None) -> str:
    if x is None or base is None:
        return "—"
    return f"{x - base:+.2f}"


def find(
    rows: Iterable[Row], target: str, stream: bool, conc: int, route: str | None = None
) -> Row | None:
    """The measured row of a target and scenario (route None: the target's first route)."""
    for r in rows:
        if (
            (
                r.target == target
                or (
                    target in (LITELLM_PREFIX, NGINX_PREFIX, PORTKEY_PREFIX)
                    and r.target.startswith(target + " ")
                )
            )
            and r.stream == stream
            and r.conc == conc
            and (route is None or r.route == route)
            and r.load is not None
        ):
            return r
    return None


def markdown_table(rows: list[Row]) -> str:
    """The one results table; added latency is against `direct` in the same mode and concurrency."""
    head = (
        "| target | request | mode | conc | req/s | p50 ms | p99 ms | +p50 ms | +p99 ms "
        "| TTFC p50 ms | +TTFC ms | CPU µs/req | peak RSS MB | errors |\n"
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    )
    out = [head]
    for r in rows:
        mode = "stream" if r.stream else "json"
        if r.load is None:
            out.append(
                f"| {r.target} | {r.route} | {mode} | {r.conc} | {r.note or 'not run'} |"
                + " — |" * 9
            )
            continue
        base = find(rows, DIRECT, r.stream, r.conc)
        base_ttfc = base.ttfc if base is not None else None
        is_base = r.target == DIRECT
        ld = r.load
        out.append(
            "| "
            + " | ".join(
                [
                    r.target,
                    r.route,
                    mode,
                    str(r.conc),
                    f"{ld.rps:,.0f}",
                    _f(ld.p50_ms),
                    _f(ld.p99_ms),
                    "—"
                    if is_base or base is None
                    else _plus(ld.p50_ms, base.load.p50_ms if base.load else None),
                    "—"
                    if is_base or base is None
                    else _plus(ld.p99_ms, base.load.p99_ms if base.load else None),
                    _f(r.ttfc.ttfc_p50_ms) if r.ttfc else "—",
                    "—"
                    if is_base or r.ttfc is None or base_ttfc is None
                    else _plus(r.ttfc.ttfc_p50_ms, base_ttfc.ttfc_p50_ms),
                    _f(r.cpu_us, 0),
                    _f(r.rss_mb, 1),
                    str(ld.errors + (r.ttfc.errors if r.ttfc else 0)),
                ]
            )
            + " |"
        )
    return "\n".join(out)


def _ratio(a: Row | None, b: Row | None) -> float | None:
    if a is None or b is None or a.load is None or b.load is None or b.load.rps <= 0:
        return None
    return a.load.rps / b.load.rps


def _r(x: float | None, suffix: str = "") -> str:
    return "n/a" if x is None else f"{x:.2f}{suffix}"


def ratio_lines(rows: list[Row], routes: list[str]) -> list[str]:
    """routectl / passthrough and routectl / LiteLLM req/s, from this run."""
    lines: list[str] = []
    for target in (ROUTECTL_1W, ROUTECTL_2W):
        for stream in (False, True):
            for conc in (64, 1):
                parts = []
                for route in routes:
                    x = _ratio(
                        find(rows, target, stream, conc, route),
                        find(rows, PASSTHROUGH, stream, conc),
                    )
                    if x is not None:
                        parts.append(f"{route} {x:.2f}")
                if parts:
                    mode = "streaming" if stream else "non-streaming"
                    lines.append(
                        f"- {target} / passthrough req/s, {mode}, c={conc}: " + ", ".join(parts)
                    )
    for stream in (False, True):
        for conc in (64, 1):
            x = _ratio(
                find(rows, ROUTECTL_1W, stream, conc, PROVIDER_MODEL),
                find(rows, LITELLM_PREFIX, stream, conc, PROVIDER_MODEL),
            )
            if x is not None:
                mode = "streaming" if stream else "non-streaming"
                lines.append(
                    f"- {ROUTECTL_1W} / LiteLLM req/s, provider/model, {mode}, c={conc}: {x:.1f}x"
                )
    return lines


def _check(ok: bool | None, text: str) -> str:
    mark = "n/a " if ok is None else ("PASS" if ok else "MISS")
    return f"- {mark} {text}"


def goal_lines(rows: list[Row], routes: list[str], big: TableFigure | None) -> list[str]:
    """The issue's goals, checked against this run (ratios are from the same run)."""
    out: list[str] = []
    for route in routes:
        x = _ratio(find(rows, ROUTECTL_1W, False, 64, route), find(rows, PASSTHROUGH, False, 64))
        out.append(
            _check(
                None if x is None else x >= 0.8,
                f"non-streaming req/s >= 0.8 x passthrough ({route}): {_r(x)}",
            )
        )
    x = _ratio(
        find(rows, ROUTECTL_1W, False, 64, PROVIDER_MODEL),
        find(rows, LITELLM_PREFIX, False, 64, PROVIDER_MODEL),
    )
    out.append(
        _check(None if x is None else x >= 40, f"non-streaming req/s >= 40 x LiteLLM: {_r(x, 'x')}")
    )
    direct = find(rows, DIRECT, False, 1)
    for route in routes:
        r = find(rows, ROUTECTL_1W, False, 1, route)
        if r is None or direct is None or r.load is None or direct.load is None:
            out.append(_check(None, f"added latency at c=1 ({route}): not measured"))
            continue
        p50 = r.load.p50_ms - direct.load.p50_ms
        p99 = r.load.p99_ms - direct.load.p99_ms
        out.append(_check(p50 < 0.6, f"added p50 at c=1 < 0.6 ms ({route}): {p50:.2f} ms"))
        out.append(_check(p99 < 1.2, f"added p99 at c=1 < 1.2 ms ({route}): {p99:.2f} ms"))
    for route in routes:
        x = _ratio(find(rows, ROUTECTL_1W, True, 64, route), find(rows, PASSTHROUGH, True, 64))
        out.append(
            _check(
                None if x is None else x >= 0.8,
                f"streaming req/s >= 0.8 x passthrough ({route}): {_r(x)}",
            )
        )
    d = find(rows, DIRECT, True, 1)
    for route in routes:
        r = find(rows, ROUTECTL_1W, True, 1, route)
        if r is None or d is None or r.ttfc is None or d.ttfc is None:
            continue
        extra = r.ttfc.ttfc_p50_ms - d.ttfc.ttfc_p50_ms
        out.append(
            _check(
                extra <= 0.5, f"time to first chunk <= direct + 0.5 ms ({route}): +{extra:.2f} ms"
            )
        )
    for route in routes:
        r = find(rows, ROUTECTL_1W, False, 64, route)
        cpu = r.cpu_us if r is not None else None
        out.append(
            _check(
                None if cpu is None else cpu < 300,
                f"CPU per request < 300 µs ({route}, c=64): {_f(cpu, 0)} µs",
            )
        )
    if big is not None:
        if big.serve_rss_mb is not None and big.serve_peak_mb is not None:
            rss, what = (
                big.serve_rss_mb,
                f"`routectl serve` once ready (peak {big.serve_peak_mb:.1f} MB)",
            )
        else:
            rss, what = big.peak_rss_mb, "load_table + create_app, peak"
        out.append(
            _check(
                rss < 150,
                f"RSS < 150 MB with {big.collections:,} collections: {rss:.1f} MB, {what}",
            )
        )
        loaded = big.load_s + (big.app_s or 0.0)
        ready = (
            ""
            if big.serve_ready_s is None
            else f"; `routectl serve` ready after {big.serve_ready_s:.2f} s"
        )
        out.append(
            _check(
                loaded < 1.0,
                f"{big.collections:,}-collection table loaded in < 1 s (load_table + create_app): "
                f"{loaded:.2f} s{ready}",
            )
        )
    return out


def messages_lines(rows: list[Row], route: str) -> list[str]:
    """Issue 11: /v1/messages pass-through req/s over chat completions' provider/model, same run
    and target (both a private connection, one model, the same small request and answer)."""
    out: list[str] = []
    for target in (ROUTECTL_1W, ROUTECTL_2W):
        for stream in (False, True):
            for conc in (64, 1):
                x = _ratio(
                    find(rows, target, stream, conc, route),
                    find(rows, target, stream, conc, PROVIDER_MODEL),
                )
                if x is None:
                    continue
                mode = "streaming" if stream else "non-streaming"
                text = f"{target}, {mode}, c={conc}: {route} / chat completions req/s {x:.2f}"
                out.append(_check(x >= 0.9, text + " (goal >= 0.9)"))
    return out or [_check(None, f"{route}: not measured")]


def limits_lines(rows: list[Row]) -> list[str]:
    """Issue 15: req/s with the caller's limits in Redis (requests, tokens and spend checked
    and settled) over the same server without limits; affinity over plain round robin."""
    out: list[str] = []
    for stream in (False, True):
        for conc in (64, 1):
            mode = "streaming" if stream else "non-streaming"
            x = _ratio(
                find(rows, ROUTECTL_LIMITS, stream, conc, PROVIDER_MODEL),
                find(rows, ROUTECTL_1W, stream, conc, PROVIDER_MODEL),
            )
            if x is not None:
                text = f"Redis limits on / off, provider/model, {mode}, c={conc}: {x:.2f}"
                out.append(_check(x >= 0.85, text + " (goal >= 0.85)"))
    for stream in (False, True):
        for conc in (64, 1):
            mode = "streaming" if stream else "non-streaming"
            x = _ratio(
                find(rows, ROUTECTL_1W, stream, conc, AFFINITY),
                find(rows, ROUTECTL_1W, stream, conc, ROUND_ROBIN),
            )
            if x is not None:
                out.append(
                    f"- affinity on / off (round_robin collection), {mode}, c={conc}: {x:.2f}"
                )
    return out or [_check(None, "limits and affinity: not measured")]


def table_size_markdown(figures: list[TableFigure]) -> str:
    """The table-size figures: load_table and create_app in a fresh interpreter, and `routectl serve`."""
    out = [
        "| table | collections | file MB | load_table s | create_app s | peak RSS MB (load + app) "
        "| serve ready s | serve peak RSS MB | serve RSS MB once ready |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for f in figures:
        out.append(
            f"| {f.label} | {f.collections:,} | {f.file_mb:.1f} | {f.load_s:.3f} | {_f(f.app_s, 3)} "
            f"| {f.peak_rss_mb:.1f} | {_f(f.serve_ready_s, 2)} | {_f(f.serve_peak_mb, 1)} "
            f"| {_f(f.serve_rss_mb, 1)} |"
        )
    notes = [f"- {f.label}: {f.note}" for f in figures if f.note]
    return "\n".join(out + notes)


def _cpu_ratio(a: Row | None, b: Row | None) -> float | None:
    if a is None or b is None or a.cpu_us is None or not b.cpu_us:
        return None
    return a.cpu_us / b.cpu_us


def _short(route: str) -> str:
    return {"round_robin collection": "rr", "least_used collection": "lu"}.get(route, route)


def _all(values: list[float | None], ok: Callable[[float], bool]) -> bool | None:
    known = [v for v in values if v is not None]
    if not known:
        return None
    return all(ok(v) for v in known)


def lean_lines(rows: list[Row], routes: list[str]) -> list[str]:
    """Issue 16: routectl (1 worker) against the bare passthrough and nginx, same run."""
    out: list[str] = []
    for stream in (False, True):
        mode = "SSE" if stream else "JSON"
        for conc in (64, 1):
            pt = find(rows, PASSTHROUGH, stream, conc)
            cpu = [_cpu_ratio(find(rows, ROUTECTL_1W, stream, conc, r), pt) for r in routes]
            rps = [_ratio(find(rows, ROUTECTL_1W, stream, conc, r), pt) for r in routes]
            text = ", ".join(f"{_short(r)} {_r(x)}" for r, x in zip(routes, cpu, strict=True))
            out.append(
                _check(
                    _all(cpu, lambda x: x <= 0.8),
                    f"CPU per request <= 0.8 x passthrough, {mode}, c={conc}: {text}",
                )
            )
            text = ", ".join(f"{_short(r)} {_r(x)}" for r, x in zip(routes, rps, strict=True))
            stretch = _all(rps, lambda x: x >= 1.25)
            out.append(
                _check(
                    _all(rps, lambda x: x >= 1.0),
                    f"req/s >= 1.0 x passthrough, {mode}, c={conc}: {text}"
                    + (" (stretch 1.25 reached)" if stretch else ""),
                )
            )
        direct, pt = find(rows, DIRECT, stream, 1), find(rows, PASSTHROUGH, stream, 1)
        if direct is not None and pt is not None and direct.load and pt.load:
            base = pt.load.p50_ms - direct.load.p50_ms
            added = [find(rows, ROUTECTL_1W, stream, 1, r) for r in routes]
            vals = [a.load.p50_ms - direct.load.p50_ms if a and a.load else None for a in added]
            text = ", ".join(f"{_short(r)} {_f(v)}" for r, v in zip(routes, vals, strict=True))
            out.append(
                _check(
                    _all([None if v is None else v - base for v in vals], lambda d: d <= 0),
                    f"added p50 at c=1 <= passthrough's ({base:.2f} ms), {mode}: {text} ms",
                )
            )
        pt = find(rows, PASSTHROUGH, stream, 64)
        if pt is not None and pt.load is not None:
            p99s = [find(rows, ROUTECTL_1W, stream, 64, r) for r in routes]
            vals = [r.load.p99_ms if r and r.load else None for r in p99s]
            text = ", ".join(f"{_short(r)} {_f(v)}" for r, v in zip(routes, vals, strict=True))
            limit = pt.load.p99_ms
            out.append(
                _check(
                    _all([None if v is None else v - limit for v in vals], lambda d: d <= 0),
                    f"p99 at c=64 <= passthrough's ({limit:.2f} ms), {mode}: {text} ms",
                )
            )
        nginx = find(rows, NGINX_PREFIX, stream, 64)
        cpu = [_cpu_ratio(find(rows, ROUTECTL_1W, stream, 64, r), nginx) for r in routes]
        text = ", ".join(f"{_short(r)} {_r(x, 'x')}" for r, x in zip(routes, cpu, strict=True))
        out.append(
            _check(
                _all(cpu, lambda x: x <= 4.0),
                f"stretch: CPU per request <= 4 x nginx, {mode}, c=64: {text}",
            )
        )
    return out


def peer_lines(rows: list[Row]) -> list[str]:
    """Same-run ratios to the peers, the scale-out figure and the client candidates' rows."""
    out: list[str] = []
    for stream in (False, True):
        mode = "SSE" if stream else "JSON"
        for conc in (64, 1):
            me = find(rows, ROUTECTL_1W, stream, conc, PROVIDER_MODEL)
            for peer in (NGINX_PREFIX, PORTKEY_PREFIX, PASSTHROUGH):
                other = find(rows, peer, stream, conc)
                rps, cpu = _ratio(me, other), _cpu_ratio(me, other)
                if rps is None and cpu is None:
                    continue
                out.append(
                    f"- routectl (1 worker, provider/model) / {peer}, {mode}, c={conc}: "
                    f"req/s {_r(rps, 'x')}, CPU per request {_r(cpu, 'x')}"
                )
    for failed in rows:
        if failed.target.startswith(PORTKEY_PREFIX) and failed.load is None and failed.note:
            mode = "SSE" if failed.stream else "JSON"
            out.append(f"- {failed.target}, {mode}, c={failed.conc}: {failed.note}")
    for stream in (False, True):
        mode = "SSE" if stream else "JSON"
        for route in (PROVIDER_MODEL,):
            x = _ratio(
                find(rows, ROUTECTL_2W, stream, 64, route),
                find(rows, ROUTECTL_1W, stream, 64, route),
            )
            if x is not None:
                out.append(
                    f"- scale-out: routectl 2 workers / 1 worker req/s, {mode}, c=64, {route}: "
                    f"{x:.2f}x (2 workers on both CPUs, which the fake upstream and the load "
                    "generator share: not a clean 2-core figure)"
                )
    for stream in (False, True):
        mode = "SSE" if stream else "JSON"
        for conc in (64, 1):
            base = find(rows, PASSTHROUGH, stream, conc)
            for client in ("lean", "pyreqwest"):
                row = find(rows, f"{PASSTHROUGH} ({client} client)", stream, conc)
                if row is None:
                    continue
                out.append(
                    f"- candidate: passthrough on {client} / on aiohttp, {mode}, c={conc}: "
                    f"req/s {_r(_ratio(row, base), 'x')}, "
                    f"CPU per request {_r(_cpu_ratio(row, base), 'x')}"
                )
            old = find(rows, ROUTECTL_AIOHTTP, stream, conc, PROVIDER_MODEL)
            new = find(rows, ROUTECTL_1W, stream, conc, PROVIDER_MODEL)
            if old is not None and new is not None:
                out.append(
                    f"- candidate: routectl on lean / on aiohttp, provider/model, {mode}, "
                    f"c={conc}: req/s {_r(_ratio(new, old), 'x')}, "
                    f"CPU per request {_r(_cpu_ratio(new, old), 'x')}"
                )
    return out
