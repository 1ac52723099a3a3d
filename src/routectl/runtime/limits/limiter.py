"""The limiter: which limits apply to a request, the check before the upstream call, the answer
headers, and the settlement from the upstream's usage after the answer.

A request is checked against the limits of its caller (`limits.users`), of every organization the
caller belongs to (`limits.organizations`: all their members' requests together) and of the
collection it names (`limits.collections`: every caller's requests together), all in one backend
call. Tokens are reserved from the estimate (prompt estimate + `max_tokens`) and spend from the
estimate priced at the route's most expensive member; both are corrected from the upstream's
`usage` once the answer is complete (streams included), in the slot and period they were booked.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from prometheus_client import CollectorRegistry, Counter

from routectl.runtime.auth import Caller
from routectl.runtime.errors import RoutingError
from routectl.runtime.limits.backend import (
    WINDOW_SLOTS,
    Backend,
    BackendUnavailable,
    Charge,
    Outcome,
)
from routectl.runtime.plan import RequestFacts
from routectl.runtime.routes import Route
from routectl.table import Limit, RoutingTable

__all__ = ["Limiter", "RouteRules", "Ticket", "duration"]

log = logging.getLogger("routectl.runtime")

_PREFIX = "{routectl}"  # a Redis Cluster hash tag: a request's keys share one slot
_NANO_PER_USD = 1_000_000_000
_NUMBERS = (int, float)  # a cost in a record (made once: `int | float` is built per use)
_MAX_CACHED = 100_000  # (caller, route) pairs remembered per table
_SCOPE_WORDS = {"user": "user", "org": "organization", "collection": "collection"}
_MEASURE_WORDS = {
    "requests_per_minute": "requests per minute",
    "tokens_per_minute": "tokens per minute",
    "usd_per_day": "USD per day",
    "usd_per_month": "USD per month",
}


@dataclass(frozen=True, slots=True)
class _Rule:
    scope: str  # "user", "org", "collection"
    subject: str
    measure: str  # a routing.yaml key: requests_per_minute ...
    limit: int  # in units: requests, tokens, nano-dollars
    written: float  # the limit as routing.yaml writes it (USD for budgets)
    key: str  # the counter's key, without the period of a budget


_new = tuple.__new__
_ceil, _floor = math.ceil, math.floor  # (globals: no module attribute read per request)
_REQUESTS, _TOKENS, _BUDGET = 0, 1, 2  # what a charged rule costs: 1, the tokens, the spend
_HEADER_NAMES = {
    kind: (
        f"x-ratelimit-limit-{kind}",
        f"x-ratelimit-remaining-{kind}",
        f"x-ratelimit-reset-{kind}",
    )
    for kind in ("requests", "tokens")
}


class RouteRules(NamedTuple):
    """The limits one (caller, route) is checked against, and what pricing the estimate uses;
    with what every request of the pair repeats worked out once (the hot path)."""

    input_per_mtok: float  # the route's most expensive member: the spend estimate
    output_per_mtok: float
    fail_closed: bool  # some limit refuses requests when the backend cannot answer
    # the rules a request is charged for, in order (a route of free models asks no budget)
    charged: tuple[_Rule, ...]
    # per charged rule: _REQUESTS (its Charge built once, a request counts 1), _TOKENS, _BUDGET
    plan: tuple[tuple[int, _Rule, Charge | None], ...]
    settling: tuple[tuple[int, str], ...]  # (place among the charges, measure): corrected later
    # per header kind (requests, tokens): its three names and (place, limit, limit as text) of
    # each window of that kind
    headers: tuple[tuple[tuple[str, str, str], tuple[tuple[int, int, str], ...]], ...]


def _route_rules(
    rules: list[_Rule], input_per_mtok: float, output_per_mtok: float, fail_closed: bool
) -> RouteRules:
    free = input_per_mtok == 0 and output_per_mtok == 0
    charged = tuple(
        r for r in rules if not (free and r.measure in ("usd_per_day", "usd_per_month"))
    )
    plan: list[tuple[int, _Rule, Charge | None]] = []
    windows: dict[str, list[tuple[int, int, str]]] = {}
    for i, r in enumerate(charged):
        if r.measure == "requests_per_minute":
            plan.append((_REQUESTS, r, Charge(r.key, True, r.limit, 1)))
            windows.setdefault("requests", []).append((i, r.limit, str(r.limit)))
        elif r.measure == "tokens_per_minute":
            plan.append((_TOKENS, r, None))
            windows.setdefault("tokens", []).append((i, r.limit, str(r.limit)))
        else:
            plan.append((_BUDGET, r, None))
    return RouteRules(
        input_per_mtok,
        output_per_mtok,
        fail_closed,
        charged,
        tuple(plan),
        tuple((i, r.measure) for i, r in enumerate(charged) if r.measure != "requests_per_minute"),
        tuple((_HEADER_NAMES[kind], tuple(found)) for kind, found in windows.items()),
    )


def _rules_of(scope: str, subject: str, limit: Limit) -> list[_Rule]:
    base = f"{_PREFIX}:{scope}:{subject}"
    out = []
    if limit.requests_per_minute is not None:
        rpm = limit.requests_per_minute
        out.append(_Rule(scope, subject, "requests_per_minute", rpm, rpm, f"{base}:requests"))
    if limit.tokens_per_minute is not None:
        tpm = limit.tokens_per_minute
        out.append(_Rule(scope, subject, "tokens_per_minute", tpm, tpm, f"{base}:tokens"))
    for measure, usd in (
        ("usd_per_day", limit.usd_per_day),
        ("usd_per_month", limit.usd_per_month),
    ):
        if usd is not None:
            nano = round(usd * _NANO_PER_USD)
            out.append(_Rule(scope, subject, measure, nano, usd, f"{base}:{measure}"))
    return out


_periods: dict[str, tuple[float, float, str]] = {}  # measure -> (start, end, id): the last one


def _period(measure: str, now: float) -> tuple[str, float]:
    """A budget's period id and its end (epoch seconds): the UTC day or month of `now`."""
    last = _periods.get(measure)
    if last is not None and last[0] <= now < last[1]:
        return last[2], last[1]
    period, start, end = _compute_period(measure, now)
    _periods[measure] = (start, end, period)
    return period, end


def _compute_period(measure: str, now: float) -> tuple[str, float, float]:
    at = datetime.fromtimestamp(now, UTC)
    if measure == "usd_per_day":
        start = at.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
        return start.strftime("%Y-%m-%d"), start.timestamp(), end.timestamp()
    start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start.strftime("%Y-%m"), start.timestamp(), end.timestamp()


def duration(seconds: float) -> str:
    """A wait as OpenAI writes it in `x-ratelimit-reset-*`: 20ms, 1.5s, 6m0s."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds < 60:
        text = f"{seconds:.1f}".removesuffix(".0")
        return f"{text}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest}s"


class Ticket:
    """An admitted request's bookings, kept until its settlement."""

    __slots__ = ("booked", "headers", "reserved_nano", "reserved_tokens", "settling", "slot")

    def __init__(
        self,
        booked: list[Charge],
        settling: tuple[tuple[int, str], ...],
        slot: int,
        reserved_tokens: int,
        reserved_nano: int,
        headers: dict[str, str],
    ) -> None:
        self.booked = booked  # every charge, in the order of the route's rules
        # (place among them, measure) of those that settle (tokens, spend): empty when the
        # request's usage is not needed (only request counts)
        self.settling = settling
        self.slot = slot
        self.reserved_tokens = reserved_tokens
        self.reserved_nano = reserved_nano
        self.headers = headers  # x-ratelimit-*: on every answer to this request


class Limiter:
    """Applies a table's limits through a backend; one per process (the app's)."""

    def __init__(
        self,
        backend: Backend,
        registry: CollectorRegistry,
        clock: Callable[[], float],
        minute_s: float = 60.0,
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.minute_s = minute_s
        self.slot_s = minute_s / WINDOW_SLOTS
        self._cache: dict[tuple[str, str], RouteRules | None] = {}
        self._cached_for = ""  # the table sha the cache belongs to
        if hasattr(backend, "on_lost"):
            backend.on_lost = self._lost
        self.refusals = Counter(
            "routectl_limit_refusals",
            "Requests refused by routing.yaml's limits, by error code",
            ("code",),
            registry=registry,
        )
        self.backend_errors = Counter(
            "routectl_limit_backend_errors",
            "Limit checks the backend could not answer (Redis down or slow), by what the "
            "limits' `fail` mode did with the request: allowed (fail open) or refused (closed)",
            ("outcome",),
            registry=registry,
        )

    # ------------------------------------------------------------ which limits apply

    def rules_for(self, table: RoutingTable, caller: Caller, route: Route) -> RouteRules | None:
        """The limits of a request, or None when none applies (cached per table)."""
        limits = table.limits
        if not limits:
            return None
        if self._cached_for != table.sha256:
            self._cache = {}
            self._cached_for = table.sha256
        key = (caller.handle, route.key)
        try:
            return self._cache[key]
        except KeyError:
            pass
        rules: list[_Rule] = []
        fail_closed = False
        owners: list[tuple[str, str, Limit | None]] = [
            ("user", caller.handle, limits.users.get(caller.handle)),
            *(("org", org, limits.organizations.get(org)) for org in caller.organizations),
        ]
        if route.collection is not None:
            name = route.collection.name
            owners.append(("collection", name, limits.collections.get(name)))
        for scope, subject, limit in owners:
            if limit is not None:
                rules += _rules_of(scope, subject, limit)
                fail_closed = fail_closed or limit.fail == "closed"
        found: RouteRules | None = None
        if rules:
            infos = [m.info for m in route.members if m.info is not None]
            found = _route_rules(
                rules,
                max((i.input_per_mtok for i in infos), default=0.0),
                max((i.output_per_mtok for i in infos), default=0.0),
                fail_closed,
            )
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[key] = found
        return found

    # ------------------------------------------------------------ the check

    async def admit(self, rules: RouteRules, facts: RequestFacts) -> Ticket | None:
        """Check and book the request (429 when a limit refuses it); None: the backend could not
        answer and every limit fails open."""
        now = self.clock()
        tokens = facts.prompt_tokens + facts.max_output_tokens
        # tokens x USD per million tokens x 1,000 = nano-dollars
        nano = _ceil(
            (
                facts.prompt_tokens * rules.input_per_mtok
                + facts.max_output_tokens * rules.output_per_mtok
            )
            * 1000
        )
        charges: list[Charge] = []
        for kind, rule, fixed in rules.plan:
            if fixed is not None:
                charges.append(fixed)
            elif kind == _TOKENS:
                # tuple.__new__: a NamedTuple's own constructor is a Python-level function
                charges.append(_new(Charge, (rule.key, True, rule.limit, tokens, 0.0)))
            else:
                period, end = _period(rule.measure, now)
                key = f"{rule.key}:{period}"
                charges.append(_new(Charge, (key, False, rule.limit, nano, end)))
        slot = _floor(now * WINDOW_SLOTS / self.minute_s)  # the window slot of `now`
        try:
            outcome = await self.backend.admit(charges, slot)
        except BackendUnavailable as exc:
            self._unavailable(rules, exc)  # raises when a limit fails closed
            return None
        if not outcome.admitted:
            raise self._refusal(rules, charges, outcome, now)
        # (which charges settle is looked up at the settlement: no list made per request)
        return Ticket(
            charges, rules.settling, slot, tokens, nano, self._headers(rules, outcome, now)
        )

    def _unavailable(self, rules: RouteRules, exc: BackendUnavailable) -> None:
        if rules.fail_closed:
            self.backend_errors.labels("refused").inc()
            self.refusals.labels("limits_unavailable").inc()
            log.warning("limits backend unavailable, request refused (fail: closed): %s", exc)
            raise RoutingError(
                "limits_unavailable",
                503,
                "The gateway cannot check this caller's limits right now; retry shortly",
                headers={"Retry-After": "1"},
            )
        self.backend_errors.labels("allowed").inc()
        return None

    def _refusal(
        self, rules: RouteRules, charges: list[Charge], outcome: Outcome, now: float
    ) -> RoutingError:
        refusing: list[tuple[float, Charge, _Rule, int]] = []
        for i, (c, rule) in enumerate(zip(charges, rules.charged, strict=True)):
            used = outcome.used[i]
            if used + c.cost <= c.limit:
                continue
            if c.window:
                free = outcome.free_slot[i]
                wait = math.inf if free < 0 else free * self.slot_s - now
            else:
                wait = c.period_end - now
            refusing.append((wait, c, rule, used))
        assert refusing, "a refusal has a refusing limit"
        waits = [r[0] for r in refusing]
        never = math.inf in waits
        # the one the answer names: a budget when one refuses (the longer story), else the
        # limit that frees last
        _, charge, rule, used = max(refusing, key=lambda r: (not r[1].window, r[0]))
        budget = not charge.window
        code = "quota_exceeded" if budget else "rate_limited"
        self.refusals.labels(code).inc()
        who = f"{_SCOPE_WORDS[rule.scope]} {rule.subject}"
        what = _MEASURE_WORDS[rule.measure]
        if budget:
            message = (
                f"Budget of {rule.written:g} {what} reached for {who} "
                f"(spent {used / _NANO_PER_USD:.6f} USD)"
            )
            shown_used: float = round(used / _NANO_PER_USD, 6)
        elif charge.cost > charge.limit:
            message = (
                f"This request needs about {charge.cost} tokens, more than the {rule.limit} "
                f"{what} limit of {who}"
            )
            shown_used = used
        else:
            message = f"Rate limit of {rule.limit} {what} reached for {who}"
            shown_used = used
        details = {
            "scope": _SCOPE_WORDS[rule.scope],
            "subject": rule.subject,
            "limit": rule.measure,
            "value": rule.written,
            "used": shown_used,
        }
        headers = self._headers(rules, outcome, now)
        finite = [w for w in waits if w != math.inf]
        if finite and not never:
            wait = max(finite)
            seconds = max(1, math.ceil(wait))
            headers["Retry-After"] = str(seconds)
            headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
            message += f"; retry after {seconds} s"
            details["retry_after_s"] = seconds
        return RoutingError(code, 429, message, {"details": details}, headers=headers)

    def _headers(self, rules: RouteRules, outcome: Outcome, now: float) -> dict[str, str]:
        """x-ratelimit-{limit,remaining,reset}-{requests,tokens}: the tightest of each kind."""
        headers: dict[str, str] = {}
        used = outcome.used
        for (limit_name, remaining_name, reset_name), windows in rules.headers:
            best, limit, best_text = windows[0]
            best_remaining = limit - used[best]
            if best_remaining < 0:  # (max(0, ...) without a builtin call)
                best_remaining = 0
            for i, limit, text in windows[1:]:
                remaining = limit - used[i]
                if remaining < 0:  # a window over its limit counts 0 (ties keep the first)
                    remaining = 0
                if remaining < best_remaining:
                    best, best_remaining, best_text = i, remaining, text
            headers[limit_name] = best_text
            headers[remaining_name] = str(best_remaining)
            # until the oldest counted slot leaves the window and frees what it holds
            oldest = outcome.oldest[best]
            reset = 0.0 if oldest < 0 else (oldest + WINDOW_SLOTS) * self.slot_s - now
            headers[reset_name] = duration(reset)  # (0ms once it is past)
        return headers

    # ------------------------------------------------------------ settlement

    def settle(self, ticket: Ticket, record: dict[str, Any], failed: bool) -> None:
        """Correct the reservation from the answer's usage (the access-log record's counts), in
        the background: the answer does not wait for it. No usage on an answer that failed: the
        request used nothing; no usage on a successful one: the reservation stands."""
        if not ticket.settling:
            return
        prompt, completion = record.get("prompt_tokens"), record.get("completion_tokens")
        if isinstance(prompt, int) and isinstance(completion, int):
            tokens = prompt + completion
            cost = record.get("cost")
            nano = round(cost * _NANO_PER_USD) if isinstance(cost, _NUMBERS) else 0
        elif failed:
            tokens, nano = 0, 0
        else:
            return
        deltas = []
        booked = ticket.booked
        for i, measure in ticket.settling:
            if measure == "tokens_per_minute":
                delta = tokens - ticket.reserved_tokens
            else:
                delta = nano - ticket.reserved_nano
            if delta:
                deltas.append((booked[i], delta))
        if not deltas:
            return
        self.backend.settle(deltas, ticket.slot)

    def _lost(self, n: int) -> None:
        self.backend_errors.labels("unsettled").inc(n)
        log.warning("limits backend unavailable: %d usage correction(s) lost", n)

    async def drain(self) -> None:
        """Wait until the corrections given so far are written (tests; shutdown)."""
        await self.backend.flush()

    async def close(self) -> None:
        """Write the corrections, then close the backend."""
        await self.backend.close()
