"""Runtime: the table being served (swapped atomically on reload), the routing state and metrics."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from routectl.runtime.accesslog import AccessLog
from routectl.runtime.anthropic import endpoint as anthropic_endpoint
from routectl.runtime.metrics import Metrics
from routectl.runtime.resolve import TableIndex, index_of
from routectl.runtime.state import RoutingState
from routectl.table import RoutingTable, TableError, load_table

__all__ = ["Loaded", "Runtime"]

log = logging.getLogger("routectl.runtime")


# Sent on every upstream request. Naming them here (instead of letting aiohttp add its defaults,
# or skipping them with skip_auto_headers, which copies and sorts headers per request) keeps the
# client on its fast path; identity encoding because the client does not decompress.
_UPSTREAM_DEFAULTS = {"Accept": "*/*", "Accept-Encoding": "identity", "User-Agent": "routectl"}


def _request_headers(headers: Mapping[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict({**_UPSTREAM_DEFAULTS, **headers}))


@dataclass(frozen=True, slots=True)
class Loaded:
    """One table and what is derived from it once: index, upstream URLs, auth headers."""

    table: RoutingTable
    index: TableIndex
    sha: str
    urls: dict[str, URL]  # connection id -> chat completions (or Anthropic messages) URL
    # connection id -> request headers (the key lives only here)
    headers: dict[str, CIMultiDictProxy[str]]
    models_payload: dict[str, bytes] = field(default_factory=dict)  # caller -> /v1/models body
    # (connection id, model id) -> the headers of a chosen model's JSON answer, built once
    answer_headers: dict[tuple[str, str], CIMultiDictProxy[str]] = field(default_factory=dict)

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


def _load(table: RoutingTable, environ: Mapping[str, str]) -> Loaded:
    urls: dict[str, URL] = {}
    headers: dict[str, CIMultiDictProxy[str]] = {}
    for cid, c in table.connections.items():
        if c.api == "anthropic":
            key = environ.get(c.api_key_env) if c.api_key_env else None
            url, h = anthropic_endpoint(c.base_url, key)
            urls[cid], headers[cid] = URL(url), _request_headers(h)
            continue
        if c.api != "openai" or not c.base_url:
            continue
        urls[cid] = URL(c.base_url.rstrip("/") + "/chat/completions")
        h = {"Content-Type": "application/json"}
        key = environ.get(c.api_key_env) if c.api_key_env else None
        if key:
            h["Authorization"] = f"Bearer {key}"
        headers[cid] = _request_headers(h)
    return Loaded(table, index_of(table), table.sha256, urls, headers)


class Runtime:
    """Everything a request handler reaches for (mutable: the table is swapped on reload)."""

    def __init__(
        self,
        table: RoutingTable,
        *,
        state: RoutingState,
        metrics: Metrics,
        access_log: AccessLog | None = None,
        environ: Mapping[str, str] | None = None,
        max_body_bytes: int = 10 * 1024 * 1024,
        table_path: str | Path | None = None,
    ) -> None:
        self.state = state
        self.metrics = metrics
        self.access_log = access_log or AccessLog()
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.max_body_bytes = max_body_bytes
        self.table_path = table_path
        self.session: aiohttp.ClientSession | None = None
        state.configure(table, self.environ)
        self.loaded = _load(table, self.environ)
        metrics.table_info.labels(table.sha256).set(1)
        for cid, why in sorted(state.unavailable.items()):
            log.warning("connection %s unavailable: %s", cid, why)

    def reload(self, table: RoutingTable) -> None:
        """Serve `table` from now on; state of members and deployments that survive carries over."""
        loaded = _load(table, self.environ)
        old = self.loaded.sha
        self.state.configure(table, self.environ)
        self.state.carry_over(table)
        self.loaded = loaded  # one assignment: requests in flight keep the table they started with
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
            self.metrics.reloads.labels("refused").inc()
            log.error("routing table reload refused, still serving %s: %s", self.loaded.sha, exc)
            return False
        self.reload(table)
        return True
