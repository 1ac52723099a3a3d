"""Limits per user, organization and collection (routing.yaml `limits`), enforced before the
upstream call: a sliding window per minute for requests and tokens, a budget per UTC day and
month for spend; counters in this process or in Redis shared by every replica.

`limiter` decides and answers, `backend` holds the in-process counters and the contract,
`redis_backend` the shared ones (imported only with `serve --redis-url`), `usage` reads a
stream's usage for the settlement.
"""

from __future__ import annotations

from routectl.runtime.limits.backend import Backend, BackendUnavailable, InProcessBackend
from routectl.runtime.limits.limiter import Limiter, Ticket
from routectl.runtime.limits.settings import LimitSettings, backend_for

__all__ = [
    "Backend",
    "BackendUnavailable",
    "InProcessBackend",
    "LimitSettings",
    "Limiter",
    "Ticket",
    "backend_for",
]
