"""ServedTable: one table and everything derived from it once at load; Runtime: what handlers reach.

A reload builds a new ServedTable and swaps it in with one assignment, so requests in flight keep
the table (and its index, endpoints and caches) they started with.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from routectl.runtime.accesslog import AccessLog
from routectl.runtime.dialects import DIALECTS, Dialect, Endpoint, UpstreamSession
from routectl.runtime.fields import TABLE_FIELD, route_fields, routing_fields
from routectl.runtime.index import TableIndex
from routectl.runtime.metrics import Metrics
from routectl.runtime.options import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_RESPONSE_BYTES
from routectl.runtime.plan import Candidate, RoutePlan
from routectl.runtime.routes import Route
from routectl.runtime.state import RoutingState
from routectl.runtime.usage import Usage
from routectl.table import RoutingTable, TableError, load_table

if TYPE_CHECKING:
    from routectl.runtime.limits import Limiter

__all__ = ["Runtime", "ServedTable"]

log = logging.getLogger("routectl.runtime")

# request-level timeouts come from clients: their ClientTimeouts are built per request beyond this
_MAX_TIMEOUTS = 1024


def _timeout(ms: int) -> aiohttp.ClientTimeout:
    seconds = ms / 1000
    return aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)


class ServedTable:
    """A table as served: its index, each connection's dialect and endpoint, and answer caches.

    Caches (filled on first use, dropped with the table on reload):
    `models_bodies` (caller handle -> the /v1/models body), `answer_headers` ((connection, model)
    -> the headers of a chosen model's answer), `timeouts` (ms -> aiohttp.ClientTimeout),
    `fields` ((route, model) -> the `_...` fields of an answer that needed no per-request ones),
    `native` ((connection, model, client format) -> whether the request goes as sent).
    """

    __slots__ = (
        "answer_headers",
        "dialects",
        "endpoints",
        "field_heads",
        "fields",
        "index",
        "limited",
        "loaded_at",
        "models_bodies",
        "native",
        "sha",
        "table",
        "timeouts",
    )

    def __init__(
        self, table: RoutingTable, environ: Mapping[str, str], loaded_at: float = 0.0
    ) -> None:
        self.table = table
        # when this process started serving the table, by the routing state's (injectable)
        # clock: `created` of /v1/models entries (the table itself has no clock, so that
        # compiling twice gives the same bytes) and the dashboard's table age
        self.loaded_at = loaded_at
        self.index = TableIndex(table)
        self.sha = table.sha256
        # whether routing.yaml has limits at all: without, a request skips the limiter (and the
        # Python-level `__bool__` of `table.limits`)
        self.limited = bool(table.limits)
        # connection id -> its dialect and endpoint (URL and headers with the key: only here)
        self.dialects: dict[str, Dialect] = {}
        self.endpoints: dict[str, Endpoint | None] = {}
        for cid, c in table.connections.items():
            dialect = self.dialects[cid] = DIALECTS[c.api]
            self.endpoints[cid] = dialect.endpoint(c, environ)
        self.models_bodies: dict[str, bytes] = {}
        self.answer_headers: dict[tuple[str, str], CIMultiDictProxy[str]] = {}
        self.fields: dict[tuple[str, str], dict[str, Any]] = {}
        # the route's own fields (fields.route_fields), for answers with strategy fields after them
        self.field_heads: dict[tuple[str, str], dict[str, Any]] = {}
        # bounded by the table: its connections and models, and the formats the code knows
        self.native: dict[tuple[str, str, str], bool] = {}
        # the table's own timeouts, built once; request overrides add up to _MAX_TIMEOUTS
        self.timeouts: dict[int, aiohttp.ClientTimeout] = {
            ms: _timeout(ms)
            for ms in {
                table.defaults.timeout_ms,
                *(c.timeout_ms for c in table.collections.values()),
            }
        }

    def routing_fields(
        self, route: Route, plan: RoutePlan, used: Candidate, first: Candidate, reason: str | None
    ) -> dict[str, Any]:
        """The `_...` fields of an answer (runtime/fields.py). Without strategy fields or a
        fallback they depend on the route and the model alone: built once per (route, model) and
        shared, so read only. A request-level load balancer's route is the client's own list of
        models, so it is never cached (the cache stays bounded by the table)."""
        if used is not first or route.kind == "load_balancer":
            return routing_fields(route, plan, used, first, reason, self.sha)
        key = (route.key, used.model_id)
        info = plan.info
        if info:  # least_used's counts: new every request, between the route's and the table's
            head = self.field_heads.get(key)
            if head is None:
                head = self.field_heads[key] = route_fields(route, used.model_id)
            return {**head, **info, TABLE_FIELD: self.sha}  # routing_fields' order
        found = self.fields.get(key)
        if found is None:
            found = self.fields[key] = routing_fields(route, plan, used, first, None, self.sha)
        return found

    def native_for(self, cand: Candidate, fmt: str) -> bool:
        """Whether a request of client format `fmt` goes to `cand` as sent (its dialect's
        `native_for`, remembered in `native`: read it inline, call this on a miss)."""
        key = (cand.connection_id, cand.model_id, fmt)
        found = self.native.get(key)
        if found is None:
            dialect = self.dialects[cand.connection_id]
            found = self.native[key] = dialect.native_for(fmt, cand.member.info)
        return found

    def timeout(self, ms: int) -> aiohttp.ClientTimeout:
        """The upstream timeout of `ms` milliseconds (connect and each read)."""
        found = self.timeouts.get(ms)
        if found is None:
            found = _timeout(ms)
            if len(self.timeouts) < _MAX_TIMEOUTS:
                self.timeouts[ms] = found
        return found

    def chosen_headers(self, connection_id: str, model_id: str) -> CIMultiDictProxy[str]:
        """The table, selected-model, connection and JSON content-type headers of an answer."""
        found = self.answer_headers.get((connection_id, model_id))
        if found is None:
            found = CIMultiDictProxy(
                CIMultiDict(
                    {
                        "Content-Type": "application/json",
                        "x-routectl-table": self.sha,
                        "x-routectl-selected-model": model_id,
                        "x-routectl-connection": connection_id,
                    }
                )
            )
            self.answer_headers[(connection_id, model_id)] = found
        return found


class Runtime:
    """Everything a request handler reaches for (mutable: the table is swapped on reload)."""

    # routing.yaml's limits, set by create_app (a handler reaches it through the request's
    # RUNTIME_OF, without `request.app`)
    limiter: Limiter

    def __init__(
        self,
        table: RoutingTable,
        *,
        state: RoutingState,
        metrics: Metrics,
        access_log: AccessLog | None = None,
        environ: Mapping[str, str] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        table_path: str | Path | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        metrics_token: str | None = None,
    ) -> None:
        self.state = state
        self.metrics = metrics
        self.access_log = access_log or AccessLog()
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.max_body_bytes = max_body_bytes
        self.table_path = table_path
        self.max_response_bytes = max_response_bytes
        self.metrics_token = metrics_token  # /metrics needs it as a bearer token when set
        self.session: UpstreamSession | None = None  # the upstream client, opened by the app
        self.draining = False  # stopping (SIGTERM): /readyz answers 503, see runtime/server.py
        self.last_reload: dict[str, Any] | None = None  # the last reload's outcome, for /readyz
        # usage counters and the dashboard's window; `observers` see every request's record
        # after its access-log line (the serve command adds the request_logs sink)
        self.usage = Usage(state, state.clock)
        self.usage.register(metrics.registry)
        self.observers: list[Callable[[dict[str, Any]], None]] = [self.usage.observe]
        state.configure(table, self.environ)
        self.served = ServedTable(table, self.environ, state.clock())
        metrics.table_info.labels(table.sha256).set(1)
        for cid, why in sorted(state.unavailable.items()):
            log.warning("connection %s unavailable: %s", cid, why)

    def reload(self, table: RoutingTable) -> None:
        """Serve `table` from now on; state of members and deployments that survive carries over."""
        served = ServedTable(table, self.environ, self.state.clock())
        old = self.served.sha
        self.state.configure(table, self.environ)
        self.state.carry_over(table)
        self.served = served  # one assignment: requests in flight keep the table they started with
        self.metrics.table_info.clear()
        self.metrics.table_info.labels(table.sha256).set(1)
        self.metrics.reloads.labels("ok").inc()
        log.info("routing table reloaded: %s -> %s", old, table.sha256)

    def reload_from_file(self, path: str | Path | None = None) -> bool:
        """Load and verify the table file and serve it; a bad table is refused and logged."""
        target = path or self.table_path
        if target is None:
            return False
        try:
            table = load_table(target)
        except TableError as exc:
            return self._refused(str(exc))
        if table.sha256 == self.served.sha:  # a repeated SIGHUP, a watch's first look, a revert
            if self.last_reload is not None and self.last_reload["result"] == "refused":
                log.info("routing table file is the served one again (%s)", table.sha256)
            self.last_reload = {"result": "unchanged", "at": round(time.time())}
            return True
        try:
            self.reload(table)
        except Exception as exc:  # a table the runtime cannot serve: refused like a bad file
            return self._refused(f"cannot serve it: {type(exc).__name__}: {exc}")
        self.last_reload = {"result": "ok", "at": round(time.time())}
        return True

    def _refused(self, why: str) -> bool:
        self.metrics.reloads.labels("refused").inc()
        self.last_reload = {"result": "refused", "error": why, "at": round(time.time())}
        log.error("routing table reload refused, still serving %s: %s", self.served.sha, why)
        return False
