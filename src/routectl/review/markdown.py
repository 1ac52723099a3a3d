"""Render a TableDiff as Markdown for a pull-request comment (GitHub renders the Mermaid charts)."""

from __future__ import annotations

from collections.abc import Iterable

from routectl.review.effects import MemberShare, TableDiff, TrafficChange

__all__ = ["percent", "render_markdown"]

_BASIS_NOTES = {
    "weights": "split by normalized weights",
    "equal": "split equally over active members",
    "first_choice": (
        "the first choice takes 100% in the steady state; the others serve only when it is "
        "unavailable or fails"
    ),
    "none": "no active member",
}


def percent(share: float | None) -> str:
    """0.7 -> '70%', 1/3 -> '33.3%', None -> '—'."""
    if share is None:
        return "—"
    text = f"{share * 100:.1f}"
    return (text[:-2] if text.endswith(".0") else text) + "%"


def _code(items: Iterable[str]) -> str:
    return ", ".join(f"`{i}`" for i in items)


def _count_line(diff: TableDiff) -> str:
    groups = [
        (len(diff.warnings), "warning"),
        (len(diff.access), "access change"),
        (len(diff.collections), "collection added/removed"),
        (len(diff.traffic), "traffic change"),
        (len(diff.strategies), "strategy change"),
        (len(diff.settings), "setting change"),
        (len(diff.connections), "connection change"),
        (len(diff.first_choices), "first-choice change"),
        (len(diff.capabilities), "capability change"),
        (len(diff.others), "other change"),
        (len(diff.limits), "limit change"),
    ]
    parts = [
        f"{n} {label}{'s' if n != 1 and not label.endswith('d') else ''}"
        for n, label in groups
        if n
    ]
    return ", ".join(parts)


def _limit_value(value: object) -> str:
    """A limit's value as a reviewer reads it: `—` when not limited."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.6g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _chart(t: TrafficChange) -> list[str]:
    labels: list[str] = []
    values: list[str] = []
    for m in t.members:
        for side, share in (("before", m.share_before), ("after", m.share_after)):
            labels.append(f'"{m.member} {side}"')
            values.append(f"{round((share or 0.0) * 100, 1):g}")
    return [
        "```mermaid",
        "xychart-beta",
        f'    title "{t.collection}: traffic share before -> after (%)"',
        f"    x-axis [{', '.join(labels)}]",
        '    y-axis "share (%)" 0 --> 100',
        f"    bar [{', '.join(values)}]",
        "```",
    ]


def _member_change(m: MemberShare) -> str:
    if m.details:
        return "; ".join(m.details)
    return {"added": "added", "removed": "removed", "changed": "share moved"}.get(m.change, "")


def _traffic(t: TrafficChange) -> list[str]:
    if t.strategy_before == t.strategy_after or t.strategy_before is None:
        strategy = f"`{t.strategy_after}`"
    elif t.strategy_after is None:
        strategy = f"`{t.strategy_before}` (removed)"
    else:
        strategy = f"`{t.strategy_before}` → `{t.strategy_after}`"
    lines = [f"#### `collection/{t.collection}` — {strategy}", ""]
    for label, basis in (("before", t.basis_before), ("after", t.basis_after)):
        if basis is not None and (label == "after" or basis != t.basis_after):
            lines.append(f"> {label}: {_BASIS_NOTES[basis]}  ")
    lines += ["", "| member | share before | share after | change |", "|---|---:|---:|---|"]
    for m in t.members:
        what = _member_change(m)
        lines.append(
            f"| `{m.member}` | {percent(m.share_before)} | {percent(m.share_after)} | {what} |"
        )
    moved = any(abs((m.share_before or 0.0) - (m.share_after or 0.0)) > 1e-9 for m in t.members)
    # a chart only where the split moves; a member added at 0% needs no picture
    return [*lines, "", *([*_chart(t), ""] if moved else [])]


def render_markdown(diff: TableDiff) -> str:
    """The whole review comment."""
    base = diff.base_sha[:12] or "empty"
    head = diff.head_sha[:12] or "empty"
    out = [f"## Routing change `{base}` → `{head}`", ""]
    if diff.is_empty():
        return "\n".join([*out, "No routing effect.", ""])
    out += [f"**{_count_line(diff)}**", ""]
    if diff.warnings:
        out += ["### ⚠️ Warnings", ""]
        out += [f"- **{w.kind}**: {w.message}" for w in diff.warnings]
        out.append("")
    if diff.access:
        out += [
            "### Access",
            "",
            "| who | gains | loses | membership |",
            "|---|---|---|---|",
        ]
        for a in diff.access:
            verb = ("joins", "leaves") if a.kind == "user" else ("adds", "removes")
            membership = "; ".join(
                [f"{verb[0]} {_code(a.joined)}"] * bool(a.joined)
                + [f"{verb[1]} {_code(a.left)}"] * bool(a.left)
            )
            out.append(
                f"| {a.kind} `{a.subject}` | {_code(a.gained)} | {_code(a.lost)} | {membership} |"
            )
        out.append("")
    if diff.collections:
        out += ["### Collections", ""]
        for c in diff.collections:
            owner = f" of `{c.owner}`" if c.owner else ""
            out.append(
                f"- {c.change} `collection/{c.name}` ({c.scope}{owner}, `{c.strategy}`): "
                f"{_code(c.members)}"
            )
        out.append("")
    if diff.traffic:
        out += ["### Traffic shares", ""]
        for t in diff.traffic:
            out += _traffic(t)
    if diff.strategies:
        out += ["### Strategies", ""]
        out += [
            f"- `collection/{s.collection}`: `{s.before}` → `{s.after}`" for s in diff.strategies
        ]
        out.append("")
    if diff.settings:
        out += ["### Collection settings", ""]
        out += [
            f"- `collection/{s.collection}` `{s.setting}`: `{s.before}` → `{s.after}`"
            for s in diff.settings
        ]
        out.append("")
    if diff.connections:
        out += ["### Connections", ""]
        for k in diff.connections:
            if k.change == "priority":
                out.append(f"- `{k.connection}` (`{k.owner}`): priority {k.before} → {k.after}")
            elif k.change == "models":
                out.append(f"- `{k.connection}` (`{k.owner}`): models `{k.before}` → `{k.after}`")
            else:
                models = k.after if k.change == "added" else k.before
                out.append(f"- {k.change} `{k.connection}` (`{k.owner}`): {_code(models or [])}")
        out.append("")
    if diff.first_choices:
        out += [
            "### First-choice connection per caller",
            "",
            "| caller | model | before | after |",
            "|---|---|---|---|",
        ]
        for f in diff.first_choices:
            before = f"`{f.before}`" if f.before else "—"
            after = f"`{f.after}`" if f.after else "—"
            out.append(f"| `{f.user}` | `{f.model}` | {before} | {after} |")
        out.append("")
    if diff.capabilities:
        out += ["### Capabilities", "", "| collection | lost | gained |", "|---|---|---|"]
        for cap in diff.capabilities:
            out.append(
                f"| `collection/{cap.collection}` | {_code(cap.lost)} | {_code(cap.gained)} |"
            )
        out.append("")
    if diff.limits:
        out += [
            "### Limits",
            "",
            "| who | limit | before | after |",
            "|---|---|---|---|",
        ]
        for lim in diff.limits:
            out.append(
                f"| {lim.kind} `{lim.subject}` | `{lim.limit}` | {_limit_value(lim.before)} | "
                f"{_limit_value(lim.after)} |"
            )
        out.append("")
    if diff.others:
        out += ["### Models, defaults, keys and URLs", ""]
        for o in diff.others:
            if o.setting == "defined":
                out.append(f"- {'added' if o.after else 'removed'} {o.subject}")
            else:
                out.append(f"- {o.subject} `{o.setting}`: `{o.before}` → `{o.after}`")
        out.append("")
    return "\n".join(out)
