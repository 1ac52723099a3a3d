"""RoutingState: every piece of mutable routing state of one process, with an injected clock.

Round-robin cursors, smooth-WRR current weights, least-used counters, per-deployment
(connection, model) cooldowns and failure windows, latency moving averages, and which
connections lack credentials; and the two caches the planner keeps over them (`prepared`,
`least_used_views`). Nothing here is written to a database; a reload keeps the state of members
and deployments that still exist (`carry_over`).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections import deque
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from routectl.runtime.dialects import connection_problems
from routectl.table import Defaults, RoutingTable

if TYPE_CHECKING:
    from routectl.runtime.plan import RoutePrep
    from routectl.runtime.strategies import LeastUsedView

__all__ = [
    "Clock",
    "Cooldown",
    "RoutingState",
    "format_time",
]

_DEFAULTS = Defaults()

Clock = Callable[[], float]
FAILURE_WINDOW_S = 60.0
LATENCY_ALPHA = 0.3  # weight of the newest sample in the moving average
_MAX_LB_ROUTES = 10_000  # request-level load balancers are keyed by client input: bound them


_LAST_SECOND = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()


def format_time(ts: float) -> str:
    """Epoch seconds as an ISO-8601 UTC timestamp (what error reasons show); a time past what a
    date can hold (no cooldown reaches it: they are capped) shows as the last second of 9999."""
    if not math.isfinite(ts) or ts > _LAST_SECOND:
        ts = _LAST_SECOND
    return datetime.fromtimestamp(max(ts, 0.0), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Cooldown:
    """A deployment cooling down until `until` (epoch seconds), and why."""

    until: float
    reason: str  # "rate_limited" or "failures"

    def describe(self) -> str:
        """Human text used in `collection_no_models` reasons."""
        when = format_time(self.until)
        if self.reason == "rate_limited":
            return f"rate limited until {when}"
        return f"cooling down after repeated failures until {when}"


class RoutingState:
    """All mutable routing state of a process (mutable by design; one per app)."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        cooldown_s: float = _DEFAULTS.cooldown_s,
        allowed_fails: int = _DEFAULTS.allowed_fails,
        max_cooldown_s: float = _DEFAULTS.max_cooldown_s,
    ) -> None:
        self.clock: Clock = clock or time.time
        self.rng = rng or random.Random()
        self.cooldown_s = cooldown_s
        self.allowed_fails = allowed_fails
        self.max_cooldown_s = max_cooldown_s
        # route key -> key of the member chosen last
        self.rr_last: dict[str, str] = {}
        # route key -> member key -> smooth-WRR current weight (integers: exact splits); the
        # weighted strategy stores a list-backed mapping here, so a decision rewrites no dict
        self.wrr_current: dict[str, MutableMapping[str, int]] = {}
        # route key -> member key -> requests routed so far
        self.usage: dict[str, dict[str, int]] = {}
        # route key -> (the eligible list, its member keys) at the route's last decision: the
        # late-joiner rule compares against it
        self.usage_seen: dict[str, tuple[Sequence[object], frozenset[str]]] = {}
        # (connection id, model id) -> cooldown
        self.cooldowns: dict[tuple[str, str], Cooldown] = {}
        # (connection id, model id) -> times of recent failures other than 429
        self.failures: dict[tuple[str, str], deque[float]] = {}
        # model id -> moving average upstream latency (s); (connection, model) -> same
        self.latency: dict[str, float] = {}
        self.deployment_latency: dict[tuple[str, str], float] = {}
        # connection id -> why it is unavailable regardless of time (credentials)
        self.unavailable: dict[str, str] = {}
        # caches (derived, rebuilt when missing):
        # plan's per-(route key, caller owners) precomputation; depends on `unavailable`, so
        # reset with it
        self.prepared: dict[tuple[str, frozenset[str]], RoutePrep] = {}
        # least_used's per-route sorted view of `usage`, for the pool it last decided among;
        # valid only while it still mirrors the same counters dict
        self.least_used_views: dict[str, LeastUsedView] = {}

    # ------------------------------------------------------------ table lifecycle

    def configure(self, table: RoutingTable, environ: Mapping[str, str] | None = None) -> None:
        """Adopt a table's defaults and read which connections lack credentials."""
        self.cooldown_s = table.defaults.cooldown_s
        self.allowed_fails = table.defaults.allowed_fails
        self.max_cooldown_s = table.defaults.max_cooldown_s
        self.unavailable = connection_problems(table, os.environ if environ is None else environ)
        self.prepared = {}

    def carry_over(self, table: RoutingTable) -> None:
        """Drop state of members and deployments the new table no longer has; keep the rest."""
        members = {
            f"collection:{name}": {m.model for m in c.members}
            for name, c in table.collections.items()
        }

        def keep(route_key: str, member_key: str) -> bool:
            if route_key.startswith("collection:"):
                return member_key in members.get(route_key, ())
            return True  # model/handle/lb routes are keyed by names; they re-resolve per request

        for route_key in list(self.usage):
            kept = {k: v for k, v in self.usage[route_key].items() if keep(route_key, k)}
            self.usage[route_key] = kept
            if route_key in self.usage_seen:
                keys = frozenset(k for k in self.usage_seen[route_key][1] if keep(route_key, k))
                self.usage_seen[route_key] = ((), keys)
        for route_key in list(self.wrr_current):
            self.wrr_current[route_key] = {
                k: v for k, v in self.wrr_current[route_key].items() if keep(route_key, k)
            }
        for route_key, last in list(self.rr_last.items()):
            if not keep(route_key, last):
                del self.rr_last[route_key]
        deployments = {(cid, m) for cid, c in table.connections.items() for m in c.models}
        for key in [k for k in self.cooldowns if k not in deployments]:
            del self.cooldowns[key]
        for key in [k for k in self.failures if k not in deployments]:
            del self.failures[key]
        for key in [k for k in self.deployment_latency if k not in deployments]:
            del self.deployment_latency[key]
        for model_id in [m for m in self.latency if m not in table.models]:
            del self.latency[model_id]

    # ------------------------------------------------------------ health

    def unavailable_reason(self, connection_id: str, model_id: str, now: float) -> str | None:
        """Why this deployment cannot be tried now, or None when it can (no mutation)."""
        why = self.unavailable.get(connection_id)
        if why is not None:
            return why
        cd = self.cooldown_of(connection_id, model_id, now)
        return cd.describe() if cd is not None else None

    def mark_unavailable(self, connection_id: str, why: str) -> None:
        """The upstream refused the connection's credentials: unavailable, like a connection
        whose key is unset, until a reload or restart re-reads the environment."""
        if self.unavailable.get(connection_id) != why:
            self.unavailable = {**self.unavailable, connection_id: why}
            self.prepared = {}  # per-route preparations exclude unavailable connections

    def prune_cooldowns(self, now: float) -> bool:
        """Forget expired cooldowns; True when some deployment still cools down."""
        expired = [k for k, cd in self.cooldowns.items() if cd.until <= now]
        for key in expired:
            del self.cooldowns[key]
        return bool(self.cooldowns)

    def cooldown_of(self, connection_id: str, model_id: str, now: float) -> Cooldown | None:
        """The active cooldown of a deployment, if any (no mutation)."""
        cd = self.cooldowns.get((connection_id, model_id))
        return cd if cd is not None and cd.until > now else None

    def record_rate_limit(
        self, connection_id: str, model_id: str, retry_after_s: float | None, now: float
    ) -> Cooldown:
        """A 429: cool the deployment down for Retry-After seconds (or cooldown_s when it is
        missing, unparsable, not positive or not finite), never longer than max_cooldown_s."""
        if retry_after_s is None or not 0 < retry_after_s < math.inf:
            seconds = self.cooldown_s
        else:
            seconds = retry_after_s
        cd = Cooldown(now + min(seconds, self.max_cooldown_s), "rate_limited")
        self.cooldowns[(connection_id, model_id)] = cd
        return cd

    def record_failure(self, connection_id: str, model_id: str, now: float) -> Cooldown | None:
        """A failure other than 429; the allowed_fails-th within 60 s opens a cooldown (returned)."""
        key = (connection_id, model_id)
        window = self.failures.get(key)
        if window is None:
            window = self.failures[key] = deque()
        window.append(now)
        while window and window[0] <= now - FAILURE_WINDOW_S:
            window.popleft()
        if len(window) >= self.allowed_fails:
            window.clear()
            cd = Cooldown(now + self.cooldown_s, "failures")
            self.cooldowns[key] = cd
            return cd
        return None

    def book_failure(
        self,
        connection_id: str,
        model_id: str,
        status: int | None,
        retry_after_s: float | None,
        now: float,
    ) -> Cooldown | None:
        """One failed attempt on a deployment, booked as the SPEC's health rules say; the cooldown
        it opened, if any. A 429 cools down for Retry-After (or cooldown_s); a 5xx or a transport
        failure (`status` None) counts towards `allowed_fails`; other statuses are the request's
        fault, not the deployment's. The runtime's upstream walk and `routectl simulate` call this."""
        if status == 429:
            return self.record_rate_limit(connection_id, model_id, retry_after_s, now)
        if status is None or status >= 500:
            return self.record_failure(connection_id, model_id, now)
        return None

    def recent_failures(self, connection_id: str, model_id: str, now: float) -> int:
        """Failures other than 429 within the last 60 s."""
        window = self.failures.get((connection_id, model_id))
        if not window:
            return 0
        return sum(1 for t in window if t > now - FAILURE_WINDOW_S)

    def record_latency(self, connection_id: str, model_id: str, seconds: float) -> None:
        """Fold one upstream latency sample into the model's and the deployment's moving averages."""
        old = self.latency.get(model_id)
        self.latency[model_id] = seconds if old is None else old + LATENCY_ALPHA * (seconds - old)
        key = (connection_id, model_id)
        old = self.deployment_latency.get(key)
        self.deployment_latency[key] = (
            seconds if old is None else old + LATENCY_ALPHA * (seconds - old)
        )

    # ------------------------------------------------------------ bookkeeping

    def usage_of(self, route_key: str) -> dict[str, int]:
        """The live least-used counters of a route (a copy)."""
        return dict(self.usage.get(route_key, {}))

    def wrr_of(self, route_key: str) -> MutableMapping[str, int]:
        """The smooth-WRR current weights of a route, created on first use (bounded for lb routes)."""
        cur = self.wrr_current.get(route_key)
        if cur is None:
            if route_key.startswith("lb:") and len(self.wrr_current) >= _MAX_LB_ROUTES:
                oldest = next((k for k in self.wrr_current if k.startswith("lb:")), None)
                if oldest is not None:
                    del self.wrr_current[oldest]
            cur = self.wrr_current[route_key] = {}
        return cur
