"""How `serve` enforces limits: where the counters live (`--redis-url`), how long a minute is."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass

from routectl.runtime.limits.backend import Backend, InProcessBackend

__all__ = ["MINUTE_ENV", "LimitSettings", "backend_for", "limit_settings_for"]

# The length in seconds of a limit's "minute" (default 60). For tests and demos only: with 6 a
# window reopens within seconds; `requests_per_minute` then counts per 6 s.
MINUTE_ENV = "ROUTECTL_LIMITS_MINUTE_SECONDS"


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """Where the counters live and how long a minute is."""

    redis_url: str | None = None  # None: counters in this process
    minute_s: float = 60.0
    timeout_s: float = 0.1  # the longest a Redis call may take before the `fail` mode applies


def limit_settings_for(
    redis_url: str | None, environ: Mapping[str, str] | None = None
) -> LimitSettings:
    """The settings of `serve --redis-url URL` (ValueError with what to do when unusable)."""
    env = os.environ if environ is None else environ
    if redis_url is not None and importlib.util.find_spec("redis") is None:
        raise ValueError("--redis-url needs the Redis client: pip install 'routectl[redis]'")
    raw = env.get(MINUTE_ENV)
    minute_s = 60.0
    if raw:
        try:
            minute_s = float(raw)
        except ValueError:
            minute_s = 0.0
        if not 0.06 <= minute_s <= 3600:
            raise ValueError(f"{MINUTE_ENV} must be a number of seconds from 0.06 to 3600")
    return LimitSettings(redis_url or None, minute_s)


def backend_for(settings: LimitSettings) -> Backend:
    """The in-process backend, or Redis when a URL is given (the client imported only then)."""
    if settings.redis_url is None:
        return InProcessBackend()
    from routectl.runtime.limits.redis_backend import RedisBackend

    return RedisBackend(
        settings.redis_url, minute_s=settings.minute_s, timeout_s=settings.timeout_s
    )
