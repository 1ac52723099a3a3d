"""The `anthropic` dialect: OpenAI Chat Completions <-> Anthropic Messages API. Pure translation.

`to_anthropic` builds the Messages request body and `from_anthropic` turns a Messages response
into a `chat.completion` (`anthropic_stream.StreamTranslator` does the same for streams);
`AnthropicDialect` puts them behind the dialect interface.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from yarl import URL

from routectl.runtime.dialects.anthropic_stream import StreamTranslator, finish_reason, usage_of
from routectl.runtime.dialects.base import (
    Attempt,
    Endpoint,
    HttpDialect,
    Reply,
    UpstreamSession,
    attempt_headers,
    replace_model,
    request_headers,
)
from routectl.table import Connection

if TYPE_CHECKING:
    from routectl.runtime.dialects.stream import ChunkTranslator

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_TOKENS",
    "AnthropicDialect",
    "endpoint",
    "finish_reason",
    "from_anthropic",
    "to_anthropic",
    "usage_of",
]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_BASE_URL = "https://api.anthropic.com/v1"
DEFAULT_MAX_TOKENS = (
    4096  # Anthropic requires max_tokens; used when neither request nor table sets it
)


def endpoint(base_url: str | None, api_key: str | None) -> tuple[str, dict[str, str]]:
    """The Messages URL and request headers of a connection (official API when no base_url)."""
    url = (base_url or DEFAULT_BASE_URL).rstrip("/") + "/messages"
    headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
    if api_key:
        headers["x-api-key"] = api_key
    return url, headers


# ---------------------------------------------------------------- request: OpenAI -> Anthropic


def _text_of(content: Any) -> str:
    """String content, or the text parts of list content joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p["text"]
            for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )
    return ""


def _image_block(part: dict[str, Any]) -> dict[str, Any] | None:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        return None
    if url.startswith("data:"):
        # data:<media type>;base64,<data>
        header, _, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if encoding != "base64" or not data:
            return None
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type or "image/png", "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    """OpenAI message content as Anthropic content blocks (parts it cannot carry are dropped)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    if not isinstance(content, list):
        return blocks
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            block = _image_block(part)
            if block is not None:
                blocks.append(block)
    return blocks


def _tool_use(call: Any) -> dict[str, Any] | None:
    if not isinstance(call, dict):
        return None
    fn = call.get("function")
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        return None
    args = fn.get("arguments")
    try:
        parsed = orjson.loads(args) if isinstance(args, str) and args else {}
    except orjson.JSONDecodeError:
        parsed = {}
    return {
        "type": "tool_use",
        "id": call.get("id") or "",
        "name": fn["name"],
        # Anthropic wants an object: a non-object argument value cannot be carried
        "input": parsed if isinstance(parsed, dict) else {},
    }


def _turns(messages: list[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """System texts, and user/assistant turns with consecutive same-role turns merged."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, content: str | list[dict[str, Any]]) -> None:
        if turns and turns[-1]["role"] == role:
            # Anthropic alternates roles: tool results and a following user message share a turn
            prev = turns[-1]["content"]
            if isinstance(prev, str):
                prev = [{"type": "text", "text": prev}] if prev else []
            extra = [{"type": "text", "text": content}] if isinstance(content, str) else content
            turns[-1]["content"] = prev + extra
        else:
            turns.append({"role": role, "content": content})

    for msg in messages:
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        content = msg.get("content")
        if role in ("system", "developer"):
            text = _text_of(content)
            if text:
                system.append(text)
        elif role == "user":
            add("user", content if isinstance(content, str) else _blocks(content))
        elif role == "assistant":
            blocks = _blocks(content)
            for call in msg.get("tool_calls") or ():
                use = _tool_use(call)
                if use is not None:
                    blocks.append(use)
            if blocks:
                add("assistant", blocks)
        elif role == "tool":
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": msg.get("tool_call_id") or "",
                "content": content if isinstance(content, str) else _blocks(content),
            }
            add("user", [result])
    return system, turns


def _tool(tool: Any) -> dict[str, Any] | None:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        return None
    fn = tool.get("function")
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        return None
    out: dict[str, Any] = {"name": fn["name"]}
    if isinstance(fn.get("description"), str):
        out["description"] = fn["description"]
    params = fn.get("parameters")
    out["input_schema"] = (
        params if isinstance(params, dict) else {"type": "object", "properties": {}}
    )
    return out


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict):
        fn = choice.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return {"type": "tool", "name": fn["name"]}
    return None


def to_anthropic(
    body: dict[str, Any], model: str, default_max_tokens: int | None
) -> dict[str, Any]:
    """A Messages API request body for an OpenAI chat request (`model`: the upstream's name).

    max_tokens: the request's max_completion_tokens / max_tokens, else `default_max_tokens` (the
    model's max_output_tokens), else DEFAULT_MAX_TOKENS. Keys Anthropic has no equivalent for
    (n, logprobs, penalties, response_format...) are dropped.
    """
    system, turns = _turns(body.get("messages") or [])
    out: dict[str, Any] = {"model": model}
    if system:
        out["system"] = "\n\n".join(system)
    out["messages"] = turns
    requested = body.get("max_completion_tokens")
    if requested is None:  # absent or an explicit null: the older name decides
        requested = body.get("max_tokens")
    if isinstance(requested, int) and not isinstance(requested, bool) and requested > 0:
        out["max_tokens"] = requested
    else:
        out["max_tokens"] = default_max_tokens or DEFAULT_MAX_TOKENS
    for key in ("temperature", "top_p"):
        if isinstance(body.get(key), int | float) and not isinstance(body.get(key), bool):
            out[key] = body[key]
    stop = body.get("stop")
    if isinstance(stop, str) and stop:
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        out["stop_sequences"] = [s for s in stop if isinstance(s, str) and s]
    tools = [t for t in map(_tool, body.get("tools") or ()) if t is not None]
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"))
        if body.get("parallel_tool_calls") is False:
            choice = choice or {"type": "auto"}
            if choice["type"] != "none":
                choice["disable_parallel_tool_use"] = True
        if choice is not None:
            out["tool_choice"] = choice
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}
    if body.get("stream") is True:
        out["stream"] = True
    return out


# ---------------------------------------------------------------- response: Anthropic -> OpenAI


def from_anthropic(data: dict[str, Any], model: str, created: int) -> dict[str, Any]:
    """A `chat.completion` for an Anthropic Messages response."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in data.get("content") or ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif block.get("type") == "tool_use":
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {
                        "name": block.get("name", ""),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,  # required by OpenAI's schema (a refusal is finish_reason content_filter)
    }
    if calls:
        message["tool_calls"] = calls
    return {
        "id": data.get("id") or "chatcmpl-anthropic",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(data.get("stop_reason")),
                "logprobs": None,
            }
        ],
        "usage": usage_of(data.get("usage")),
    }


# ---------------------------------------------------------------- the dialect


class AnthropicDialect(HttpDialect):
    """Anthropic's Messages API: OpenAI chat requests and answers translated both ways."""

    name = "anthropic"
    native = "anthropic.messages"

    def endpoint(self, connection: Connection, environ: Mapping[str, str]) -> Endpoint | None:
        """`{base_url or the official API}/messages` with `x-api-key`."""
        key = environ.get(connection.api_key_env) if connection.api_key_env else None
        url, headers = endpoint(connection.base_url, key)
        return Endpoint(URL(url), request_headers(headers))

    def problem(self, connection: Connection, environ: Mapping[str, str]) -> str | None:
        """Its key env var unset."""
        if connection.api_key_env and not environ.get(connection.api_key_env):
            return f"credentials not set ({connection.api_key_env})"
        return None

    def encode(self, attempt: Attempt) -> bytes:
        """A Messages request (the model's max_output_tokens when the request sets none).

        A client that speaks Messages has its bytes forwarded as sent, `model` replaced."""
        if attempt.native:
            body = attempt.body
            if attempt.raw is not None:
                model = body.get("model")
                sent = replace_model(
                    attempt.raw, model if isinstance(model, str) else "", attempt.upstream_model
                )
                if sent is not None:
                    return sent
            body["model"] = attempt.upstream_model
            return orjson.dumps(body)
        limit = attempt.info.max_output_tokens if attempt.info is not None else None
        return orjson.dumps(to_anthropic(attempt.body, attempt.upstream_model, limit))

    def count_tokens(
        self,
        session: UpstreamSession,
        endpoint: Endpoint | None,
        attempt: Attempt,
        timeout: aiohttp.ClientTimeout,
    ) -> Awaitable[Reply] | None:
        """`POST {messages URL}/count_tokens` with the native body (None for a translated one)."""
        if endpoint is None or not attempt.native:
            return None
        return session.post(
            endpoint.url / "count_tokens",
            data=self.encode(attempt),
            headers=attempt_headers(endpoint, attempt),
            timeout=timeout,
            allow_redirects=False,  # a 3xx is an upstream failure: never re-send key and prompt
        )

    def decode(self, data: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
        """A Messages answer as a chat.completion."""
        return from_anthropic(data, attempt.model_id, int(time.time()))

    def translator(self, attempt: Attempt, include_usage: bool) -> ChunkTranslator | None:
        """Messages events as OpenAI chunks."""
        return StreamTranslator(attempt.model_id, int(time.time()), include_usage)
