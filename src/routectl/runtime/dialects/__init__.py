"""Upstream dialects: one small class per way of talking to an upstream, behind one interface.

A dialect builds the upstream request from an attempt, sends it, reads the answer back into an
OpenAI `chat.completion` and translates its stream into OpenAI chunks. The upstream walk
(`runtime/upstream.py`) never branches on the kind. When the client already speaks the dialect's
own format (`native`, e.g. OpenAI chat to an `openai` upstream) the body passes through as sent.

Adding a dialect: one module here, one line in `DIALECTS`, and its name in `routectl.table.Api`
(the table and routing.yaml's schema derive their list of `api` values from it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, Protocol

import aiohttp

from routectl.runtime.dialects.anthropic import AnthropicDialect
from routectl.runtime.dialects.base import Attempt, Endpoint, Reply, UpstreamSession
from routectl.runtime.dialects.echo import EchoDialect
from routectl.runtime.dialects.openai import OpenAIDialect
from routectl.runtime.dialects.stream import ChunkTranslator
from routectl.table import Connection, Model, RoutingTable

__all__ = [
    "DIALECTS",
    "Attempt",
    "ChunkTranslator",
    "Dialect",
    "Endpoint",
    "Reply",
    "UpstreamSession",
    "connection_problems",
]


class Dialect(Protocol):
    """How routectl talks to one kind of upstream API."""

    @property
    def name(self) -> str:
        """The `api` value in routing.yaml."""
        ...

    @property
    def native(self) -> str | None:
        """The client format this upstream speaks as is ("openai.chat"), if any."""
        ...

    def native_for(self, fmt: str, model: Model | None) -> bool:
        """Whether a request of client format `fmt` for `model` goes upstream as sent (`native`
        for most dialects; an OpenAI-compatible upstream also takes embeddings, and Responses
        requests for the models that declare the `responses` capability)."""
        ...

    def endpoint(self, connection: Connection, environ: Mapping[str, str]) -> Endpoint | None:
        """URL and headers (with the key read from `environ`), or None for a local dialect."""
        ...

    def problem(self, connection: Connection, environ: Mapping[str, str]) -> str | None:
        """Why the connection cannot serve at all here (credentials unset...), or None."""
        ...

    def send(
        self,
        session: UpstreamSession,
        endpoint: Endpoint | None,
        attempt: Attempt,
        timeout: aiohttp.ClientTimeout,
    ) -> Awaitable[Reply]:
        """Send the attempt; awaiting raises TimeoutError or aiohttp.ClientError on failure."""
        ...

    def count_tokens(
        self,
        session: UpstreamSession,
        endpoint: Endpoint | None,
        attempt: Attempt,
        timeout: aiohttp.ClientTimeout,
    ) -> Awaitable[Reply] | None:
        """Ask the upstream to count a native request's input tokens; None when it cannot."""
        ...

    def decode(self, data: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
        """A successful JSON answer as an OpenAI `chat.completion` (not called when native)."""
        ...

    def translator(self, attempt: Attempt, include_usage: bool) -> ChunkTranslator | None:
        """How to turn the upstream's stream into OpenAI chunks; None when it already is."""
        ...


DIALECTS: dict[str, Dialect] = {
    "openai": OpenAIDialect(),
    "anthropic": AnthropicDialect(),
    "echo": EchoDialect(),
}


def connection_problems(table: RoutingTable, environ: Mapping[str, str]) -> dict[str, str]:
    """Connection id -> why it is unavailable regardless of time (credentials unset, no URL)."""
    problems: dict[str, str] = {}
    for cid, c in table.connections.items():
        why = DIALECTS[c.api].problem(c, environ)
        if why is not None:
            problems[cid] = why
    return problems
