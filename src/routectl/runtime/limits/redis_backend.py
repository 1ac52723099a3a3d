"""The Redis backend: every replica's counters in one Redis, each check one atomic Lua call.

One round trip per request on the hot path: `admit` is one EVALSHA that reads every counter the
request is checked against, decides, and books them all or none (Lua scripts run atomically, so
two replicas never both take the last unit). Settlement from the upstream's usage is a second
call made after the answer, off the request's path. Keys expire on their own: a window key one
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
import time
from collections.abc import Sequence
from typing import Any

from routectl.runtime.limits.backend import WINDOW_SLOTS, BackendUnavailable, Charge, Outcome

__all__ = ["ADMIT_LUA", "SETTLE_LUA", "RedisBackend"]

# KEYS: one per charge. ARGV: slot, window (slots), window key TTL (ms), then per charge:
# kind ("w" window, "b" budget), limit, cost, budget key TTL (ms).
# Returns {admitted, then per charge: used, oldest counted slot (-1: none), first slot where the
# cost fits (-1: fits now, or never)}.
ADMIT_LUA = """
local slot = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local window_ttl = tonumber(ARGV[3])
local admitted = 1
local out = {0}
local seen = {}
for i = 1, #KEYS do
  local base = 3 + (i - 1) * 4
  local kind = ARGV[base + 1]
  local limit = tonumber(ARGV[base + 2])
  local cost = tonumber(ARGV[base + 3])
  local used, oldest, free = 0, -1, -1
  if kind == 'w' then
    local raw = redis.call('HGETALL', KEYS[i])
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
    if #stale > 0 then redis.call('HDEL', KEYS[i], unpack(stale)) end
    table.sort(live, function(a, b) return a[1] < b[1] end)
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
    used = tonumber(redis.call('GET', KEYS[i]) or '0')
    if used + cost > limit then admitted = 0 end
  end
  out[#out + 1] = used
  out[#out + 1] = oldest
  out[#out + 1] = free
end
out[1] = admitted
if admitted == 1 then
  for i = 1, #KEYS do
    local base = 3 + (i - 1) * 4
    local cost = tonumber(ARGV[base + 3])
    if cost > 0 then
      if ARGV[base + 1] == 'w' then
        redis.call('HINCRBY', KEYS[i], slot, cost)
        redis.call('PEXPIRE', KEYS[i], window_ttl)
        if out[1 + (i - 1) * 3 + 2] == -1 then out[1 + (i - 1) * 3 + 2] = slot end
      else
        redis.call('INCRBY', KEYS[i], cost)
        redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[base + 4]))
      end
      out[1 + (i - 1) * 3 + 1] = out[1 + (i - 1) * 3 + 1] + cost
    end
  end
end
return out
"""

# KEYS: one per charge. ARGV: slot, window key TTL (ms), then per charge: kind, delta, TTL (ms).
SETTLE_LUA = """
local slot = ARGV[1]
local window_ttl = tonumber(ARGV[2])
for i = 1, #KEYS do
  local base = 2 + (i - 1) * 3
  local delta = tonumber(ARGV[base + 2])
  if ARGV[base + 1] == 'w' then
    if redis.call('HINCRBY', KEYS[i], slot, delta) <= 0 then redis.call('HDEL', KEYS[i], slot) end
    redis.call('PEXPIRE', KEYS[i], window_ttl)
  else
    if redis.call('INCRBY', KEYS[i], delta) < 0 then redis.call('SET', KEYS[i], 0) end
    redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[base + 3]))
  end
end
return 1
"""

_BUDGET_GRACE_MS = (
    86_400_000  # a budget key outlives its period by a day (settlements of long streams)
)


class RedisBackend:
    """Counters in Redis (redis-py's asyncio client), shared by every process using the URL."""

    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        minute_s: float = 60.0,
        timeout_s: float = 0.1,
        retry_after_s: float = 1.0,
        max_connections: int = 64,
    ) -> None:
        import redis.asyncio as aioredis  # only with --redis-url: the extra `routectl[redis]`

        self.url = url
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        # a window key lives one minute (plus a slot) after its last write
        self.window_ttl_ms = max(1, round(minute_s * 1000 * (WINDOW_SLOTS + 1) / WINDOW_SLOTS))
        # a bounded pool: beyond `max_connections` calls in flight, a call waits (at most the
        # timeout) for a connection instead of opening yet another one
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=0,
        )
        self.client: Any = aioredis.Redis(connection_pool=pool)
        self._admit = self.client.register_script(ADMIT_LUA)
        self._settle = self.client.register_script(SETTLE_LUA)
        self.down_until = 0.0  # monotonic: no call before then (the last one failed)
        self._errors = (aioredis.RedisError, OSError, TimeoutError)

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        if self.down_until and time.monotonic() < self.down_until:
            raise BackendUnavailable("redis failed less than a second ago")
        try:
            # the client's own socket timeouts, and this bound on the whole call (a script
            # reload after a Redis restart, a connection that cannot be made)
            async with asyncio.timeout(self.timeout_s * 3):
                result = await script(keys=keys, args=args)
        except self._errors as exc:
            self.down_until = time.monotonic() + self.retry_after_s
            raise BackendUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc
        self.down_until = 0.0
        return result

    async def admit(self, charges: Sequence[Charge], slot: int) -> Outcome:
        """One EVALSHA: check and book every charge atomically."""
        now = time.time()
        args: list[Any] = [slot, WINDOW_SLOTS, self.window_ttl_ms]
        for c in charges:
            ttl = max(1, round((c.period_end - now) * 1000)) + _BUDGET_GRACE_MS
            args += ["w" if c.window else "b", c.limit, c.cost, 0 if c.window else ttl]
        raw = await self._call(self._admit, [c.key for c in charges], args)
        values = [int(v) for v in raw]
        used = tuple(values[1::3])
        oldest = tuple(None if v < 0 else v for v in values[2::3])
        free = tuple(None if v < 0 else v for v in values[3::3])
        return Outcome(values[0] == 1, slot, used, oldest, free)

    async def settle(self, charges: Sequence[tuple[Charge, int]], slot: int) -> None:
        """One EVALSHA adding each delta where the reservation was booked."""
        now = time.time()
        args: list[Any] = [slot, self.window_ttl_ms]
        for c, delta in charges:
            ttl = max(1, round((c.period_end - now) * 1000)) + _BUDGET_GRACE_MS
            args += ["w" if c.window else "b", delta, ttl]
        await self._call(self._settle, [c.key for c, _ in charges], args)

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()
