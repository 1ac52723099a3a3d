"""What a limits backend is asked and answers, and the in-process backend (one replica, exact).

Two kinds of counters, both in integer units (requests, tokens, nano-dollars):

- a **sliding window** of one minute, kept as 60 slots of one second (`minute_s / 60`): a request
  is admitted when what the last 60 slots hold plus its cost stays within the limit. So a limit of
  N per minute never admits more than N within any 60 consecutive slots, a refusal knows exactly
  when enough old slots leave the window (`Retry-After`), costs can be weights (tokens) and
  corrected later in the slot they were booked in (settlement from the upstream's usage). Memory
  per counter is bounded by the 60 slots. (GCRA, the other candidate, is one number per key but
  admits a full burst again after every emptied bucket: up to 2N-1 within one minute, which is not
  what `requests_per_minute: N` says.)
- a **budget** per calendar period (UTC day, UTC month): admitted while what the period spent
  plus the request's estimated cost stays within it; it resets when the period ends.

Every check is all-or-nothing: when one counter refuses, nothing is booked anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from typing import NamedTuple, Protocol

__all__ = [
    "WINDOW_SLOTS",
    "Backend",
    "BackendUnavailable",
    "Charge",
    "InProcessBackend",
    "Outcome",
]

WINDOW_SLOTS = 60  # slots per window: one per second of a minute
_SWEEP_EVERY_S = 60.0


class BackendUnavailable(Exception):
    """The shared store could not answer in time (down, unreachable, too slow)."""


class Charge(NamedTuple):
    """One counter a request is checked against and booked in (a tuple: made per request)."""

    key: str
    window: bool  # True: the per-minute sliding window; False: a budget for a calendar period
    limit: int  # in units: requests, tokens or nano-dollars
    cost: int  # this request's reservation, in the same units
    period_end: float = 0.0  # budgets: when the period ends (epoch seconds)


class Outcome(NamedTuple):
    """A backend's answer, per charge in the order asked."""

    admitted: bool
    slot: int  # the window slot the request is (or would be) booked in
    used: Sequence[int]  # after booking when admitted, else before
    oldest: Sequence[int]  # windows: the oldest slot still counted (-1: empty; budgets -1)
    # refused windows: the first slot where the cost fits (-1: fits now, never, or a budget)
    free_slot: Sequence[int]


class Backend(Protocol):
    """Where the counters live: this process, or Redis shared by every replica."""

    @property
    def name(self) -> str:
        """`memory` or `redis` (metrics and /readyz)."""
        ...

    def admit(self, charges: Sequence[Charge], slot: int) -> Awaitable[Outcome]:
        """Check every charge at `slot`; book them all when every one fits, else none (what to
        await: a coroutine, or a future when the check waits for a batch)."""
        ...

    def settle(self, charges: Sequence[tuple[Charge, int]], slot: int) -> None:
        """Correct earlier bookings (made at `slot`) by the deltas given with each charge: now,
        or with the backend's next call (see `flush`)."""
        ...

    async def flush(self) -> None:
        """Return once every correction given so far is written (or lost: `on_lost`)."""
        ...

    async def close(self) -> None:
        """Write what waits and release connections."""
        ...


def window_state(slots: dict[int, int], slot: int) -> tuple[int, list[tuple[int, int]]]:
    """(what the window ending at `slot` holds, its non-empty slots oldest first); drops slots
    that left the window from `slots`."""
    start = slot - WINDOW_SLOTS
    for s in [s for s in slots if s <= start]:
        del slots[s]
    live = sorted(slots.items())
    return sum(c for _, c in live), live


def first_fitting_slot(live: list[tuple[int, int]], used: int, cost: int, limit: int) -> int:
    """The slot from which `cost` fits again as old slots leave the window; -1: never."""
    need = used + cost - limit
    if cost > limit:
        return -1
    for s, count in live:
        need -= count
        if need <= 0:
            return s + WINDOW_SLOTS
    return -1  # pragma: no cover - used > 0 when refused, so some slot frees enough


class InProcessBackend:
    """Counters in this process's memory: exact for one process; with `serve --workers N` or
    several replicas each process counts alone (so a limit admits up to N times its value)."""

    name = "memory"

    def __init__(self) -> None:
        self.windows: dict[str, dict[int, int]] = {}
        self.budgets: dict[str, tuple[int, float]] = {}  # key -> (spent, period end)
        self._next_sweep = time.monotonic() + _SWEEP_EVERY_S

    async def admit(self, charges: Sequence[Charge], slot: int) -> Outcome:
        """All or nothing, as the Redis script."""
        self._sweep()
        used: list[int] = []
        oldest: list[int] = []
        free: list[int] = []
        admitted = True
        for c in charges:
            if c.window:
                now_used, live = window_state(self.windows.setdefault(c.key, {}), slot)
                oldest.append(live[0][0] if live else -1)
                fits = now_used + c.cost <= c.limit
                free.append(-1 if fits else first_fitting_slot(live, now_used, c.cost, c.limit))
            else:
                now_used = self.budgets.get(c.key, (0, 0.0))[0]
                oldest.append(-1)
                fits = now_used + c.cost <= c.limit
                free.append(-1)
            used.append(now_used)
            admitted = admitted and fits
        if admitted:
            for i, c in enumerate(charges):
                if c.cost:
                    self._book(c, slot, c.cost)
                    used[i] += c.cost
                    if c.window and oldest[i] < 0:
                        oldest[i] = slot
        return Outcome(admitted, slot, used, oldest, free)

    def settle(self, charges: Sequence[tuple[Charge, int]], slot: int) -> None:
        """Add each delta where the reservation was booked."""
        for c, delta in charges:
            if delta:
                self._book(c, slot, delta)

    async def flush(self) -> None:
        """Corrections are written at once."""

    async def close(self) -> None:
        """Nothing to release."""

    def _book(self, c: Charge, slot: int, amount: int) -> None:
        if c.window:
            slots = self.windows.setdefault(c.key, {})
            value = slots.get(slot, 0) + amount
            if value > 0:
                slots[slot] = value
            else:
                slots.pop(slot, None)
        else:
            spent, _ = self.budgets.get(c.key, (0, c.period_end))
            self.budgets[c.key] = (max(0, spent + amount), c.period_end)

    def _sweep(self) -> None:
        # past periods and empty windows go, so memory follows the callers, not the uptime
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_EVERY_S
        wall = time.time()
        for key in [k for k, (_, end) in self.budgets.items() if end < wall]:
            del self.budgets[key]
        for key in [k for k, slots in self.windows.items() if not slots]:
            del self.windows[key]
