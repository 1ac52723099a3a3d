"""The Redis backend: every replica's counters in one Redis, each check one atomic Lua call.

At most one round trip per request on the hot path: a check is one EVALSHA that reads every
counter the request is checked against, decides, and books them all or none (Lua scripts run
atomically, so two replicas never both take the last unit). Checks that arrive while a call is in
flight leave together in the next one, and so do the corrections from the upstreams' usage, made
after the answers: under load a request costs a fraction of a round trip. Keys expire on their own: a window key one
minute after its last write, a budget key a day after its period ends. Every key carries the hash
tag `{routectl}`, so a request's keys share one Redis Cluster slot.

Redis is imported only here, and this module only when `serve --redis-url` is given: a runtime
without it needs no Redis client (`pip install 'routectl[redis]'` adds it).

A call that fails or takes longer than the timeout raises `BackendUnavailable`; after a failure the
backend does not try again for `retry_after_s`, so while Redis is down requests pay nothing more
than the check of a timestamp (the limits' `fail` mode decides what happens to them).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from routectl.runtime.limits.backend import WINDOW_SLOTS, BackendUnavailable, Charge, Outcome

__all__ = ["BATCH_LUA", "RedisBackend"]

# One call carries a batch: the usage corrections gathered since the last call, then the checks of
# every request that arrived meanwhile, each all-or-nothing on its own, in arrival order.
# ARGV: window (slots), window key TTL (ms), number of corrections, then per correction: kind
# ("w" window, "b" budget), slot, delta, TTL (ms); then per request: slot, number of charges, and
# per charge: kind, limit, cost, TTL (ms). KEYS: one per correction, then one per charge.
# Returns, per request: admitted (1/0), then per charge: used, the oldest counted slot (-1: none),
# the first slot where the cost fits (-1: fits now, or never).
BATCH_LUA = """
local window = tonumber(ARGV[1])
local window_ttl = tonumber(ARGV[2])
local a, k = 4, 1
for _ = 1, tonumber(ARGV[3]) do
  local key, slot, delta = KEYS[k], ARGV[a + 1], tonumber(ARGV[a + 2])
  if ARGV[a] == 'w' then
    if redis.call('HINCRBY', key, slot, delta) <= 0 then redis.call('HDEL', key, slot) end
    redis.call('PEXPIRE', key, window_ttl)
  else
    if redis.call('INCRBY', key, delta) < 0 then redis.call('SET', key, 0) end
    redis.call('PEXPIRE', key, tonumber(ARGV[a + 3]))
  end
  a, k = a + 4, k + 1
end
local out = {}
while a <= #ARGV do
  local slot, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  local at, first_a, first_k, admitted = #out + 1, a, k, 1
  out[at] = 0
  for _ = 1, n do
    local limit, cost = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    local used, oldest, free = 0, -1, -1
    if ARGV[a] == 'w' then
      local raw = redis.call('HGETALL', KEYS[k])
      local live, stale = {}, {}
      for j = 1, #raw, 2 do
        local s = tonumber(raw[j])
        if s > slot - window then
          local c = tonumber(raw[j + 1])
          used = used + c
          live[#live + 1] = {s, c}
        else
          stale[#stale + 1] = raw[j]
        end
      end
      if #stale > 0 then redis.call('HDEL', KEYS[k], unpack(stale)) end
      table.sort(live, function(x, y) return x[1] < y[1] end)
      if #live > 0 then oldest = live[1][1] end
      if used + cost > limit then
        admitted = 0
        if cost <= limit then
          local need = used + cost - limit
          for _, sc in ipairs(live) do
            need = need - sc[2]
            if need <= 0 then free = sc[1] + window break end
          end
        end
      end
    else
      used = tonumber(redis.call('GET', KEYS[k]) or '0')
      if used + cost > limit then admitted = 0 end
    end
    out[#out + 1] = used
    out[#out + 1] = oldest
    out[#out + 1] = free
    a, k = a + 4, k + 1
  end
  out[at] = admitted
  if admitted == 1 then
    local b, kk = first_a, first_k
    for i = 1, n do
      local cost = tonumber(ARGV[b + 2])
      if cost > 0 then
        if ARGV[b] == 'w' then
          redis.call('HINCRBY', KEYS[kk], slot, cost)
          redis.call('PEXPIRE', KEYS[kk], window_ttl)
          if out[at + (i - 1) * 3 + 2] == -1 then out[at + (i - 1) * 3 + 2] = slot end
        else
          redis.call('INCRBY', KEYS[kk], cost)
          redis.call('PEXPIRE', KEYS[kk], tonumber(ARGV[b + 3]))
        end
        out[at + (i - 1) * 3 + 1] = out[at + (i - 1) * 3 + 1] + cost
      end
      b, kk = b + 4, kk + 1
    end
  end
end
return out
"""

_BUDGET_GRACE_MS = (
    86_400_000  # a budget key outlives its period by a day (settlements of long streams)
)
_SETTLE_AFTER_S = 0.05  # corrections wait at most this long for a check to ride along with


class RedisBackend:
    """Counters in Redis (redis-py's asyncio client), shared by every process using the URL.

    Checks and corrections are batched: the checks that arrive while a call is in flight (and the
    corrections gathered meanwhile) leave together in the next call, one EVALSHA evaluating each
    request on its own. Under load a request costs a share of one round trip instead of one or
    two; alone, it still goes out at once.
    """

    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        minute_s: float = 60.0,
        timeout_s: float = 0.1,
        retry_after_s: float = 1.0,
        max_connections: int = 8,
    ) -> None:
        import redis.asyncio as aioredis  # only with --redis-url: the extra `routectl[redis]`

        self.url = url
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        # a window key lives one minute (plus a slot) after its last write
        self.window_ttl_ms = max(1, round(minute_s * 1000 * (WINDOW_SLOTS + 1) / WINDOW_SLOTS))
        # a bounded pool: a call waits (at most the timeout) for a free connection
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=0,
        )
        self.client: Any = aioredis.Redis(connection_pool=pool)
        self._script = self.client.register_script(BATCH_LUA)
        self.down_until = 0.0  # monotonic: no call before then (the last one failed)
        self._errors = (aioredis.RedisError, OSError, TimeoutError)
        # checks waiting for the next call: (keys, args, future of their outcome)
        self._checks: list[tuple[list[str], list[Any], asyncio.Future[list[int]]]] = []
        # corrections waiting: (key, is window, slot) -> [delta, TTL ms]
        self._corrections: dict[tuple[str, bool, int], list[int]] = {}
        # told how many corrections could not be written (Redis down): a metric
        self.on_lost: Callable[[int], None] | None = None
        self._sending = False
        self._tasks: set[asyncio.Task[None]] = set()

    def _check_up(self) -> None:
        if self.down_until and time.monotonic() < self.down_until:
            raise BackendUnavailable("redis failed less than a second ago")

    async def admit(self, charges: Sequence[Charge], slot: int) -> Outcome:
        """Check and book every charge atomically (in the next batch)."""
        self._check_up()
        now = time.time()
        args: list[Any] = [slot, len(charges)]
        for c in charges:
            ttl = max(1, round((c.period_end - now) * 1000)) + _BUDGET_GRACE_MS
            args += ["w" if c.window else "b", c.limit, c.cost, 0 if c.window else ttl]
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._checks.append(([c.key for c in charges], args, future))
        self._kick(0.0)
        values = await future
        used = tuple(values[1::3])
        oldest = tuple(None if v < 0 else v for v in values[2::3])
        free = tuple(None if v < 0 else v for v in values[3::3])
        return Outcome(values[0] == 1, slot, used, oldest, free)

    def settle(self, charges: Sequence[tuple[Charge, int]], slot: int) -> None:
        """Add each delta where the reservation was booked, with the next batch (at the latest
        50 ms from now); summed per key and slot until then."""
        if self.down_until and time.monotonic() < self.down_until:
            self._lost(len(charges))
            return
        now = time.time()
        for c, delta in charges:
            ttl = max(1, round((c.period_end - now) * 1000)) + _BUDGET_GRACE_MS
            entry = self._corrections.setdefault((c.key, c.window, slot if c.window else 0), [0, 0])
            entry[0] += delta
            entry[1] = max(entry[1], ttl)
        self._kick(_SETTLE_AFTER_S)

    def _lost(self, n: int) -> None:
        if self.on_lost is not None:
            self.on_lost(n)

    async def flush(self) -> None:
        """Return once the corrections given so far are written (or lost)."""
        while self._corrections or self._sending:
            if not self._sending:
                self._kick(0.0)
            await asyncio.sleep(0.005)

    def _kick(self, delay: float) -> None:
        """Make sure a call will carry what is waiting: now, or after `delay` when only
        corrections wait (a check soon takes them along)."""
        if self._sending:
            return  # the sender takes everything waiting when its call returns
        self._sending = True
        loop = asyncio.get_running_loop()
        if delay:
            loop.call_later(delay, self._start_sender)
        else:
            self._start_sender()

    def _start_sender(self) -> None:
        task = asyncio.get_running_loop().create_task(self._send_all())
        self._tasks.add(task)  # a reference until it ends (the loop keeps only a weak one)
        task.add_done_callback(self._tasks.discard)

    async def _send_all(self) -> None:
        try:
            while self._checks or self._corrections:
                await self._send()
        finally:
            self._sending = False

    async def _send(self) -> None:
        checks, self._checks = self._checks, []
        corrections, self._corrections = self._corrections, {}
        keys: list[str] = []
        args: list[Any] = [WINDOW_SLOTS, self.window_ttl_ms, len(corrections)]
        for (key, window, slot), (delta, ttl) in corrections.items():
            keys.append(key)
            args += ["w" if window else "b", slot, delta, ttl]
        for check_keys, check_args, _ in checks:
            keys += check_keys
            args += check_args
        try:
            if self.down_until and time.monotonic() < self.down_until:
                raise BackendUnavailable("redis failed less than a second ago")
            try:
                # the client's own socket timeouts, and this bound on the whole call (a script
                # reload after a Redis restart, a connection that cannot be made)
                async with asyncio.timeout(self.timeout_s * 3):
                    raw = await self._script(keys=keys, args=args)
            except self._errors as exc:
                self.down_until = time.monotonic() + self.retry_after_s
                raise BackendUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc
        except BackendUnavailable as exc:
            for *_, future in checks:
                if not future.done():
                    future.set_exception(exc)
            if corrections:
                self._lost(len(corrections))
            return
        self.down_until = 0.0
        values = [int(v) for v in raw]
        at = 0
        for check_keys, _, future in checks:
            size = 1 + 3 * len(check_keys)
            if not future.done():
                future.set_result(values[at : at + size])
            at += size

    async def close(self) -> None:
        """Send what waits, then close the connection pool."""
        if self._checks or self._corrections:
            with contextlib.suppress(BackendUnavailable):
                await self._send()
        await self.client.aclose()
