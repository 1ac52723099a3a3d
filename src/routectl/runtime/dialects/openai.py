"""The `openai` dialect: OpenAI-compatible Chat Completions, passed through as the client sent it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from yarl import URL

from routectl.runtime.dialects.base import Attempt, Endpoint, HttpDialect, request_headers
from routectl.runtime.dialects.stream import ChunkTranslator
from routectl.table import Connection, Model

__all__ = ["RESPONSES", "RESPONSES_CAPABILITY", "OpenAIDialect"]

RESPONSES = "openai.responses"
# a model capability: its OpenAI-compatible upstream serves the Responses API (OpenAI's does)
RESPONSES_CAPABILITY = "responses"
_NATIVE = frozenset(("openai.chat", "openai.embeddings"))


class OpenAIDialect(HttpDialect):
    """`{base_url}/chat/completions` with a bearer key; only `model` is rewritten."""

    name = "openai"
    native = "openai.chat"

    def endpoint(self, connection: Connection, environ: Mapping[str, str]) -> Endpoint | None:
        """`{base_url}/chat/completions`; None without a base_url (see `problem`)."""
        if not connection.base_url:
            return None
        headers = {"Content-Type": "application/json"}
        key = environ.get(connection.api_key_env) if connection.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        base = connection.base_url.rstrip("/")
        urls = {"openai.embeddings": URL(base + "/embeddings"), RESPONSES: URL(base + "/responses")}
        return Endpoint(URL(base + "/chat/completions"), request_headers(headers), urls)

    def native_for(self, fmt: str, model: Model | None) -> bool:
        """Chat completions and embeddings as sent; a Responses request as sent when the model
        declares the `responses` capability (its upstream serves /responses), else translated."""
        if fmt == RESPONSES:
            return model is not None and RESPONSES_CAPABILITY in model.capabilities
        return fmt in _NATIVE

    def problem(self, connection: Connection, environ: Mapping[str, str]) -> str | None:
        """Its key env var unset, or no base_url."""
        if connection.api_key_env and not environ.get(connection.api_key_env):
            return f"credentials not set ({connection.api_key_env})"
        if not connection.base_url:
            return "no base_url"
        return None

    def encode(self, attempt: Attempt) -> bytes:
        """The client's body with the upstream's model name."""
        body = attempt.body
        body["model"] = attempt.upstream_model
        return orjson.dumps(body)

    def decode(self, data: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
        """Already a chat.completion."""
        return data

    def translator(self, attempt: Attempt, include_usage: bool) -> ChunkTranslator | None:
        """Already OpenAI chunks."""
        return None
