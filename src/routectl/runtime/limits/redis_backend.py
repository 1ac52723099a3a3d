"""The Redis backend: every replica's counters in one Redis, each check one atomic Lua call.

At most one round trip per request on the hot path: a check is one EVALSHA that reads every
counter the request is checked against, decides, and books them all or none (Lua scripts run
atomically, so two replicas never both take the last unit). Checks that arrive while a call is in
flight leave together in the next one, and so do the corrections from the upstreams' usage, made
after the answers: under load a request costs a fraction of a round trip. Keys expire on their own: a window key one
minute after its last write, a budget key a day after its period ends. Every key carries the hash
tag `{routectl}`, so a request's keys share one Redis Cluster slot.

Redis is imported only here, and this module only when `serve --redis-url` is given: a runtime
without it needs no Redis client (`pip install 'routectl[redis]'` adds it). A `redis://` URL is
spoken by the lean client of `resp.py` (one connection, hiredis's parser: a call costs a few µs of
CPU where redis-py's asyncio client costs ~150); other URLs (`rediss://`, `unix://`) by redis-py.

A call that fails or takes longer than the timeout raises `BackendUnavailable`; after a failure the
backend does not try again for `retry_after_s`, so while Redis is down requests pay nothing more
than the check of a timestamp (the limits' `fail` mode decides what happens to them).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from routectl.runtime.limits.backend import WINDOW_SLOTS, BackendUnavailable, Charge, Outcome

__all__ = ["BATCH_LUA", "RedisBackend"]

# One call carries a batch: the usage corrections gathered since the last call, then the checks of
# every request that arrived meanwhile, each all-or-nothing on its own, in arrival order.
# KEYS: every key the batch touches, once. ARGV: window (slots), window key TTL (ms), and the
# batch as one string of space-separated numbers and words (one argument instead of five per
# charge: the client's command encoding costs per argument): the number of corrections, then per
# correction: key index, kind ("w" window, "b" budget), slot, delta, TTL (ms); then the number of
# counters the checks name, and per counter: key index, kind, limit, TTL (ms); then per request:
# slot, number of charges, and per charge: counter number, cost. (A counter is written once per
# batch, not once per request: under load a batch holds many requests of the same callers, and
# a request's words are then a few small numbers.)
# Returns, per request: admitted (1/0), then per charge: used, the oldest counted slot (-1: none),
# the first slot where the cost fits (-1: fits now, or never).
BATCH_LUA = """
local window = tonumber(ARGV[1])
local window_ttl = tonumber(ARGV[2])

-- A window key is a hash: one field per slot that holds a count, `t` the total of those fields,
-- `o` the oldest slot that may hold one. Every field lies in [o, o + window - 1], so a check
-- reads two fields; only when the oldest slot leaves the window (at most once per slot) are the
-- slots that left read and dropped, and the next oldest found.
-- Bookings are summed per key during the batch and written once at its end: a busy caller's
-- requests in one batch cost one HINCRBY per counter, not one each.
local windows, budgets = {}, {}
local pending, spent, spent_ttl = {}, {}, {}
local function write_window(key)
  local p = pending[key]
  if p == nil then return end
  pending[key] = nil
  for s, amount in pairs(p.slots) do redis.call('HINCRBY', key, s, amount) end
  redis.call('HINCRBY', key, 't', p.total)
  if p.o ~= nil then redis.call('HSET', key, 'o', p.o) end
  redis.call('PEXPIRE', key, window_ttl)
end
local function slots_from(key, first, last)
  local names = {}
  for s = first, last do names[#names + 1] = s end
  if #names == 0 then return names, {} end
  return names, redis.call('HMGET', key, unpack(names))
end
local function window_of(key, slot)
  local w = windows[key]
  if w ~= nil and w.slot == slot then return w end
  write_window(key)  -- another slot: read what this batch booked so far from Redis
  local tv = redis.call('HMGET', key, 't', 'o')
  local t, o = tonumber(tv[1]) or 0, tonumber(tv[2])
  local start = slot - window + 1
  if o ~= nil and o < start then
    local names, counts = slots_from(key, o, math.min(start - 1, o + window - 1))
    local gone = {}
    for i, c in pairs(counts) do
      if c then t = t - tonumber(c) gone[#gone + 1] = names[i] end
    end
    if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
    o = nil
    if t > 0 then
      local later, more = slots_from(key, start, math.min(slot, start + window - 1))
      for i = 1, #later do
        if more[i] then o = later[i] break end
      end
    end
    if o == nil then
      t = 0
      redis.call('DEL', key)
    else
      redis.call('HSET', key, 't', t, 'o', o)
    end
  end
  if t < 0 then t = 0 end
  w = {slot = slot, used = t, oldest = o}
  windows[key] = w
  return w
end
local function book_window(key, slot, amount)
  local w = windows[key]
  local p = pending[key]
  if p == nil then
    p = {slots = {}, total = 0}
    pending[key] = p
  end
  p.slots[slot] = (p.slots[slot] or 0) + amount
  p.total = p.total + amount
  if w.oldest == nil then
    w.oldest = slot
    p.o = slot
  end
  w.used = w.used + amount
end

local T = {}
for word in string.gmatch(ARGV[3], '%S+') do T[#T + 1] = word end
local a = 2
for _ = 1, tonumber(T[1]) do
  local key, slot, delta = KEYS[tonumber(T[a])], tonumber(T[a + 2]), tonumber(T[a + 3])
  if T[a + 1] == 'w' then
    -- a correction lands only while its slot is still counted
    local o = tonumber(redis.call('HGET', key, 'o'))
    if o ~= nil and slot >= o then
      local left = redis.call('HINCRBY', key, slot, delta)
      if left <= 0 then
        -- a slot never goes below zero: the total loses only what the slot held
        redis.call('HDEL', key, slot)
        delta = delta - left
      end
      redis.call('HINCRBY', key, 't', delta)
      redis.call('PEXPIRE', key, window_ttl)
    end
  else
    if redis.call('INCRBY', key, delta) < 0 then redis.call('SET', key, 0) end
    redis.call('PEXPIRE', key, tonumber(T[a + 4]))
  end
  a = a + 5
end

local counters = {}
for i = 1, tonumber(T[a]) do
  counters[i] = {
    key = KEYS[tonumber(T[a + 1])], window = T[a + 2] == 'w',
    limit = tonumber(T[a + 3]), ttl = tonumber(T[a + 4]),
  }
  a = a + 4
end
a = a + 1

local out = {}
while a <= #T do
  local slot, n = tonumber(T[a]), tonumber(T[a + 1])
  a = a + 2
  local at, first_a, admitted = #out + 1, a, 1
  out[at] = 0
  for _ = 1, n do
    local counter, cost = counters[tonumber(T[a])], tonumber(T[a + 1])
    local key, limit = counter.key, counter.limit
    local used, oldest, free = 0, -1, -1
    if counter.window then
      local w = window_of(key, slot)
      used = w.used
      if w.oldest ~= nil then oldest = w.oldest end
      if used + cost > limit then
        admitted = 0
        if cost <= limit and w.oldest ~= nil then
          -- the rare path: when do enough of the oldest slots leave the window?
          write_window(key)
          local names, counts = slots_from(key, w.oldest, slot)
          local need = used + cost - limit
          for i = 1, #names do
            if counts[i] then
              need = need - tonumber(counts[i])
              if need <= 0 then free = names[i] + window break end
            end
          end
        end
      end
    else
      used = budgets[key]
      if used == nil then used = tonumber(redis.call('GET', key) or '0') budgets[key] = used end
      if used + cost > limit then admitted = 0 end
    end
    out[#out + 1] = used
    out[#out + 1] = oldest
    out[#out + 1] = free
    a = a + 2
  end
  out[at] = admitted
  if admitted == 1 then
    local b = first_a
    for i = 1, n do
      local cost = tonumber(T[b + 1])
      if cost > 0 then
        local counter = counters[tonumber(T[b])]
        local key = counter.key
        if counter.window then
          book_window(key, slot, cost)
          if out[at + (i - 1) * 3 + 2] == -1 then out[at + (i - 1) * 3 + 2] = slot end
        else
          spent[key] = (spent[key] or 0) + cost
          spent_ttl[key] = math.max(spent_ttl[key] or 0, counter.ttl)
          budgets[key] = budgets[key] + cost
        end
        out[at + (i - 1) * 3 + 1] = out[at + (i - 1) * 3 + 1] + cost
      end
      b = b + 2
    end
  end
end
for key, _ in pairs(pending) do write_window(key) end
for key, amount in pairs(spent) do
  redis.call('INCRBY', key, amount)
  redis.call('PEXPIRE', key, spent_ttl[key])
end
return out
"""

_BUDGET_GRACE_MS = (
    86_400_000  # a budget key outlives its period by a day (settlements of long streams)
)
_SETTLE_AFTER_S = 0.05  # corrections wait at most this long for a check to ride along with


_new = tuple.__new__


def _budget_ttl_ms(period_end: float, now: float) -> int:
    """How long a budget key lives (ms): until its period ends, and a day more (a call formats
    each budget counter once, for its check or its correction)."""
    return max(1, round((period_end - now) * 1000)) + _BUDGET_GRACE_MS


class RedisBackend:
    """Counters in Redis, shared by every process using the URL: through the lean client of
    `resp.py` (`redis://`), else redis-py's asyncio client (`client` forces one of them).

    Checks and corrections are batched: the checks that arrive while a call is in flight (and the
    corrections gathered meanwhile) leave together in the next call, one EVALSHA evaluating each
    request on its own. Under load a request costs a share of one round trip instead of one or
    two; alone, it goes out at once, sent by the request itself.
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
        client: str = "auto",
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        # a window key lives one minute (plus a slot) after its last write
        self.window_ttl_ms = max(1, round(minute_s * 1000 * (WINDOW_SLOTS + 1) / WINDOW_SLOTS))
        self.down_until = 0.0  # monotonic: no call before then (the last one failed)
        self._lean: Any = None
        if client == "auto":
            client = "lean" if _lean_speaks(url) else "redis-py"
        self.client_name = client
        if client == "lean":
            from routectl.runtime.limits.resp import LeanRedis, RespError

            self._lean = LeanRedis(url, timeout_s)
            self._sha = hashlib.sha1(BATCH_LUA.encode()).hexdigest()
            self._errors: tuple[type[BaseException], ...] = (RespError, OSError, TimeoutError)
        else:
            import redis.asyncio as aioredis  # only with --redis-url: the extra `routectl[redis]`

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
            self._errors = (aioredis.RedisError, OSError, TimeoutError)
        # checks waiting for the next call: (slot, charges, future of their outcome)
        self._checks: list[tuple[int, Sequence[Charge], asyncio.Future[Outcome]]] = []
        # corrections waiting: (key, is window, slot) -> [delta, budgets: latest period end]
        self._corrections: dict[tuple[str, bool, int], list[float]] = {}
        # told how many corrections could not be written (Redis down): a metric
        self.on_lost: Callable[[int], None] | None = None
        self._sending = False  # a sender task is running
        self._timer: asyncio.TimerHandle | None = None  # a sender due for waiting corrections
        self._tasks: set[asyncio.Task[None]] = set()

    def _check_up(self) -> None:
        """BackendUnavailable while the last failure is recent (no call then)."""
        if self.down_until and time.monotonic() < self.down_until:
            raise BackendUnavailable("redis failed less than a second ago")

    def admit(self, charges: Sequence[Charge], slot: int) -> Awaitable[Outcome]:
        """Check and book every charge atomically (in the next batch): a future that a call in
        flight's sender settles, else the call this request makes itself.

        (A plain function returning what to await, not a coroutine: one coroutine fewer to make,
        suspend and resume per request.)"""
        if self.down_until:
            self._check_up()
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._checks.append((slot, charges, future))
        if self._sending:
            return future  # leaves with the sender's next call
        return self._send_own(future)

    async def _send_own(self, future: asyncio.Future[Outcome]) -> Outcome:
        # nothing in flight: this request makes the call itself, with the corrections that wait
        # (no sender task, two turns of the event loop fewer); what arrives meanwhile waits for
        # a sender started once this call returns. A timer set for corrections stays: it finds
        # nothing to send, and is not set again for each request
        self._sending = True
        try:
            await self._send()
        finally:
            if self._checks or self._corrections:
                self._start_sender()
            else:
                self._sending = False
        return future.result()

    def settle(self, charges: Sequence[tuple[Charge, int]], slot: int) -> None:
        """Add each delta where the reservation was booked, with the next batch (at the latest
        50 ms from now); summed per key and slot until then."""
        if self.down_until and time.monotonic() < self.down_until:
            self._lost(len(charges))
            return
        corrections = self._corrections
        for c, delta in charges:
            if c.window:
                entry = corrections.setdefault((c.key, True, slot), [0, 0.0])
                entry[0] += delta
                continue
            # a budget: its key lives until the latest period end given (TTL at the call)
            entry = corrections.setdefault((c.key, False, 0), [0, 0.0])
            entry[0] += delta
            if c.period_end > entry[1]:
                entry[1] = c.period_end
        if not self._sending and self._timer is None:  # _kick's own test, inline
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
        """Make sure a call will carry what is waiting: at once for a check, within `delay` when
        only corrections wait (a check soon takes them along)."""
        if self._sending:
            return  # the sender takes everything waiting when its call returns
        if not delay:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._start_sender()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._sending and (self._checks or self._corrections):
            self._start_sender()

    def _start_sender(self) -> None:
        self._sending = True
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
        now = time.time()  # budget keys' TTLs: until their period ends, and a day more
        index: dict[str, int] = {}  # key -> its place in KEYS (1-based, as Lua counts)
        words = [str(len(corrections))]
        for (key, window, slot), (delta, end) in corrections.items():
            at = index.setdefault(key, len(index) + 1)
            if window:
                words.append(f"{at} w {slot} {delta} 0")
            else:
                words.append(f"{at} b {slot} {delta} {_budget_ttl_ms(end, now)}")
        # the counters the checks name, each once: key -> (limit, its number as text)
        counters: dict[str, tuple[int, str]] = {}
        counter_words: list[str] = []
        request_words: list[str] = []
        slot_text, last_slot = "", -1  # a batch's checks mostly share a slot: its text made once
        for slot, charges, _ in checks:
            if slot != last_slot:
                slot_text, last_slot = str(slot), slot
            request_words.append(f"{slot_text} {len(charges)}")
            for key, window, limit, cost, end in charges:
                counter = counters.get(key)
                if counter is None or counter[0] != limit:  # (a reloaded table's new limit)
                    at = index.setdefault(key, len(index) + 1)
                    if window:
                        counter_words.append(f"{at} w {limit} 0")
                    else:
                        counter_words.append(f"{at} b {limit} {_budget_ttl_ms(end, now)}")
                    counter = counters[key] = (limit, str(len(counter_words)))
                request_words.append(f"{counter[1]} {cost}")
        words.append(str(len(counter_words)))
        words += counter_words
        words += request_words
        keys = list(index)
        args: list[int | str] = [WINDOW_SLOTS, self.window_ttl_ms, " ".join(words)]
        try:
            self._check_up()
            try:
                raw = await self._call(keys, args)
            except asyncio.CancelledError:
                # the request that made the call itself went away (its client disconnected):
                # whether Redis got the batch is unknown, so its corrections count as lost
                # rather than risk booking them twice
                if corrections:
                    self._lost(len(corrections))
                raise
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
        values: list[int] = raw  # the script answers integers (hiredis, redis-py: ints)
        at = 0
        for slot, charges, future in checks:
            end = at + 1 + 3 * len(charges)
            if not future.done():
                # the script's answer as it is: -1 says "none", as Outcome does (tuple.__new__:
                # the NamedTuple's own constructor is a Python-level function)
                future.set_result(
                    _new(
                        Outcome,
                        (
                            values[at] == 1,
                            slot,
                            values[at + 1 : end : 3],
                            values[at + 2 : end : 3],
                            values[at + 3 : end : 3],
                        ),
                    )
                )
            at = end

    async def _call(self, keys: list[str], args: list[int | str]) -> Any:
        if self._lean is not None:
            # each step bounded by the timeout: connecting, EVALSHA, EVAL when the script is
            # unknown (a restarted Redis)
            return await self._lean.evalsha(self._sha, BATCH_LUA, keys, args)
        # the client's own socket timeouts, and this bound on the whole call (a script reload
        # after a Redis restart, a connection that cannot be made)
        async with asyncio.timeout(self.timeout_s * 3):
            return await self._script(keys=keys, args=args)

    async def close(self) -> None:
        """Send what waits, then close the connection (pool)."""
        if self._checks or self._corrections:
            with contextlib.suppress(BackendUnavailable):
                await self._send()
        if self._lean is not None:
            await self._lean.aclose()
        else:
            await self.client.aclose()


def _lean_speaks(url: str) -> bool:
    """The lean client serves `redis://` URLs when hiredis (the `redis` extra) is there."""
    try:
        from routectl.runtime.limits.resp import supports
    except ImportError:  # no hiredis: redis-py's own parser
        return False
    return supports(url)
