"""Run the runtime's real strategy and fallback order against a simulated upstream. Deterministic.

Each request is planned with `plan_request(commit=True)` on one RoutingState, exactly as the
runtime does; each attempt fails with its model's `--fail` rate (seeded), and failures are booked
by the runtime's own `RoutingState.book_failure` as an upstream 503 (so `allowed_fails` opens
cooldowns). Time is simulated: request i happens at i / rps seconds.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from routectl.review.access import index_for
from routectl.review.explain import simulated_environ
from routectl.runtime.affinity import key_hash
from routectl.runtime.auth import Caller
from routectl.runtime.plan import RequestFacts, plan_request
from routectl.runtime.routes import Route
from routectl.runtime.state import RoutingState
from routectl.table import RoutingTable

__all__ = ["MemberStats", "Simulation", "render_simulation", "simulate"]

_T0 = 1_700_000_000.0  # a fixed epoch, so cooldown times in reasons are reproducible
_FAILURE = 503  # what a simulated upstream failure is: an upstream 503


@dataclass(slots=True)
class MemberStats:
    """Counts for one member over the whole run."""

    member: str
    first_choice: int = 0
    served: int = 0
    failed_attempts: int = 0


@dataclass(slots=True)
class Simulation:
    """The outcome of a run (mutable while it is being filled in)."""

    route: str
    strategy: str
    caller: str
    requests: int
    seed: int
    fail: dict[str, float]
    affinity_keys: int = 0  # session keys cycled through (a collection with affinity)
    members: dict[str, MemberStats] = field(default_factory=dict)
    served: int = 0
    fallbacks: int = 0
    no_model: int = 0  # 503 collection_no_models / model_unavailable
    upstream_errors: int = 0  # every attempt failed (502)
    passed_through: int = 0  # a failure not in fallback_on: the upstream's 503 goes to the client
    cooldowns: int = 0  # cooldowns opened by allowed_fails
    unavailable_at_start: list[str] = field(default_factory=list)  # the first plan's exclusions


def _rate(fail: Mapping[str, float], member: str, model_id: str) -> float:
    return fail.get(member, fail.get(model_id, 0.0))


def simulate(
    table: RoutingTable,
    caller: Caller,
    route: Route,
    requests: int,
    *,
    fail: Mapping[str, float] | None = None,
    seed: int = 0,
    rps: float = 10.0,
    environ: Mapping[str, str] | None = None,
    facts: RequestFacts | None = None,
    affinity_keys: int = 0,
) -> Simulation:
    """Route `requests` requests through the real planner; the same seed gives the same result."""
    fail = dict(fail or {})
    now = _T0
    state = RoutingState(clock=lambda: now, rng=random.Random(seed))
    state.configure(table, simulated_environ(table) if environ is None else environ)
    upstream = random.Random(f"upstream:{seed}")  # apart from the strategy's draws
    facts = facts or RequestFacts()
    index = index_for(table)
    result = Simulation(
        route.requested, route.strategy, caller.handle, requests, seed, fail, affinity_keys
    )
    for m in route.members:
        result.members[m.key] = MemberStats(m.model)
    # session keys (a collection with affinity): request i carries `session-(i mod N)`
    keyed = [facts._replace(affinity_hash=key_hash(f"session-{k}")) for k in range(affinity_keys)]
    for i in range(requests):
        now = _T0 + i / rps
        plan = plan_request(
            index, state, caller, route, keyed[i % len(keyed)] if keyed else facts, now
        )
        if i == 0:
            result.unavailable_at_start = list(plan.excluded)
        if not plan.candidates:
            result.no_model += 1
            continue
        result.members[plan.candidates[0].member.key].first_choice += 1
        for attempt, cand in enumerate(plan.candidates):
            stats = result.members[cand.member.key]
            if upstream.random() >= _rate(fail, cand.member.model, cand.model_id):
                stats.served += 1
                result.served += 1
                result.fallbacks += attempt > 0
                # a fixed latency keeps latency_optimized deterministic
                state.record_latency(cand.connection_id, cand.model_id, 0.1)
                break
            stats.failed_attempts += 1
            if (
                state.book_failure(cand.connection_id, cand.model_id, _FAILURE, None, now)
                is not None
            ):
                result.cooldowns += 1
            if str(_FAILURE) not in route.fallback_on:
                result.passed_through += 1  # as the runtime: answered as it came, no fallback
                break
        else:
            result.upstream_errors += 1
    return result


def _bar(share: float, width: int = 40) -> str:
    full = round(share * width)
    return "█" * full + "░" * (width - full)


def _pct(count: int, total: int) -> str:
    return f"{100 * count / total:.1f}%" if total else "0.0%"


def render_simulation(sim: Simulation) -> str:
    """A Markdown table of the outcome and a text bar chart of who served the traffic."""
    fails = ", ".join(f"{k}={v:g}" for k, v in sorted(sim.fail.items())) or "none"
    lines = [
        f"### Simulation of `{sim.route}` as `{sim.caller}`",
        "",
        f"{sim.requests} requests, strategy `{sim.strategy}`, seed {sim.seed}, failure rates: {fails}"
        + (f", affinity over {sim.affinity_keys} session keys" if sim.affinity_keys else ""),
        "",
        "| member | first choice | served | share served | failed attempts |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in sim.members.values():
        lines.append(
            f"| `{s.member}` | {s.first_choice} | {s.served} | "
            f"{_pct(s.served, sim.requests)} | {s.failed_attempts} |"
        )
    lines += [
        "",
        "| outcome | requests | share |",
        "|---|---:|---:|",
        f"| served | {sim.served} | {_pct(sim.served, sim.requests)} |",
        f"| served after a fallback | {sim.fallbacks} | {_pct(sim.fallbacks, sim.requests)} |",
        f"| no model available (503) | {sim.no_model} | {_pct(sim.no_model, sim.requests)} |",
        f"| every attempt failed (502) | {sim.upstream_errors} | "
        f"{_pct(sim.upstream_errors, sim.requests)} |",
    ]
    if sim.passed_through:
        lines.append(
            f"| upstream {_FAILURE} passed to the client ({_FAILURE} not in fallback_on) | "
            f"{sim.passed_through} | {_pct(sim.passed_through, sim.requests)} |"
        )
    lines += [
        "",
        f"Cooldowns opened (allowed_fails reached): {sim.cooldowns}",
        "",
    ]
    if sim.unavailable_at_start:
        lines += ["Unavailable from the start:", ""]
        lines += [f"- {reason}" for reason in sim.unavailable_at_start]
        lines.append("")
    lines.append("```text")
    width = max((len(s.member) for s in sim.members.values()), default=0)
    for s in sim.members.values():
        share = s.served / sim.requests if sim.requests else 0.0
        lines.append(f"{s.member:<{width}}  {_bar(share)} {_pct(s.served, sim.requests):>6}")
    if sim.no_model or sim.upstream_errors:
        failed = sim.no_model + sim.upstream_errors + sim.passed_through
        label = "(errors)"
        share = failed / sim.requests
        lines.append(f"{label:<{width}}  {_bar(share)} {_pct(failed, sim.requests):>6}")
    lines.append("```")
    return "\n".join(lines) + "\n"
