"""Render an explanation (the dict of `explain_model`) as text for a terminal."""

from __future__ import annotations

from typing import Any

from routectl.review.markdown import percent

__all__ = ["render_explanation"]


def _flags(request: dict[str, Any]) -> str:
    parts = [f"prompt_tokens={request['prompt_tokens']}"]
    if request.get("max_output_tokens"):
        parts.append(f"max_output_tokens={request['max_output_tokens']}")
    parts += [name for name in ("tools", "vision") if request.get(name)]
    return " ".join(parts)


_LIMIT_UNITS = (
    ("requests_per_minute", "{:,} requests/min"),
    ("tokens_per_minute", "{:,} tokens/min"),
    ("usd_per_day", "${:,.2f}/day"),
    ("usd_per_month", "${:,.2f}/month"),
)


def _limit_line(limit: dict[str, Any]) -> str:
    parts = [fmt.format(limit[key]) for key, fmt in _LIMIT_UNITS if key in limit]
    return f"{limit['scope']} {limit['subject']}: {', '.join(parts)} (fail {limit['fail']})"


def render_explanation(data: dict[str, Any]) -> str:
    """The explanation, most important first: resolution, candidates, then what was filtered."""
    request = data["request"]
    sha = (data.get("table") or "")[:12] or "unhashed"
    lines = [
        f"{request['model']} as {request['as']} (table {sha}; {_flags(request)})",
    ]
    resolution = data.get("resolution")
    if resolution is not None:
        target = (
            f"collection/{resolution['collection']}"
            if resolution["collection"]
            else request["model"]
        )
        lines.append(
            f"resolves: {resolution['rule']} -> {target}, strategy {resolution['strategy']}, "
            f"up to {data['max_attempts']} attempt(s)"
        )
    affinity = data.get("affinity")
    if affinity is not None:
        lines.append(
            f"affinity: session key hash {affinity['key_hash']} -> {affinity['member']} "
            "(rendezvous hashing over the eligible members; the strategy's order follows)"
        )
    elif resolution is not None and resolution.get("affinity_key"):
        lines.append(
            f"affinity: by {resolution['affinity_key']}; this request has no key, "
            "so the strategy alone decides"
        )
    if data["candidates"]:
        lines += ["", "candidates, in the order they are tried:"]
        seen: set[str] = set()
        for c in data["candidates"]:
            # the member's chance of being the first choice: said once, on its first attempt
            first_of_member = c["member"] not in seen
            seen.add(c["member"])
            odds = (
                f", probability {percent(c['probability'])}"
                if c["probability"] is not None and first_of_member
                else ""
            )
            via = (
                f" as {c['upstream_model']}"
                if c["upstream_model"] != c["model"].split("/", 1)[-1]
                else ""
            )
            key = "platform key" if c["tier"] == "platform" else f"{c['tier']} key of {c['owner']}"
            lines.append(
                f"  {c['attempt']}. {c['member']} via {c['connection']}{via} "
                f"({key}, connection priority {c['connection_priority']}, "
                f"member priority {c['member_priority']}{odds})"
            )
    eligible = data.get("eligible") or []
    fallbacks = [e for e in eligible if not e["preferred"]]
    if fallbacks:
        names = ", ".join(e["member"] for e in fallbacks)
        lines.append(f"  (lack a requested capability, tried after the others: {names})")
    if data.get("excluded"):
        lines += ["", "excluded:"]
        lines += [f"  - {e['subject']}: {e['reason']}" for e in data["excluded"]]
    if data.get("skipped_connections"):
        lines += ["", "connections passed over:"]
        lines += [
            f"  - {s['member']} via {s['connection']}: {s['reason']}"
            for s in data["skipped_connections"]
        ]
    if data.get("limits"):
        lines += ["", "limits checked before the upstream call:"]
        lines += [f"  - {_limit_line(lim)}" for lim in data["limits"]]
    if data.get("error"):
        err = data["error"]
        lines += ["", f"result: {data['status']} {err['code']}: {err['message']}"]
    return "\n".join(lines) + "\n"
