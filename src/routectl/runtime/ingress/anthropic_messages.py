"""The Anthropic Messages format (`POST /v1/messages`): parse a request, shape answers, errors and
streams. Pure.

To an Anthropic upstream the request passes through as the client sent it (the `anthropic`
dialect is `native` for this format: only `model` is replaced, `anthropic-version` and
`anthropic-beta` go along); to any other upstream it is translated to OpenAI chat
(`messages_to_chat`) and the answer back (`chat_to_messages`, `messages_stream`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from routectl.runtime.dialects.anthropic import ANTHROPIC_VERSION
from routectl.runtime.dialects.anthropic_stream import usage_of
from routectl.runtime.dialects.stream import ChunkTranslator
from routectl.runtime.errors import RoutingError
from routectl.runtime.ingress.chat_to_messages import error_type, to_message
from routectl.runtime.ingress.depth import check_depth
from routectl.runtime.ingress.messages_stream import ChunkEvents, NativeWatch, error_event
from routectl.runtime.ingress.messages_to_chat import to_chat
from routectl.runtime.plan import RequestFacts
from routectl.runtime.request import Call, bad_request, take_routing_keys

__all__ = [
    "ANTHROPIC_MESSAGES",
    "FORWARDED_HEADERS",
    "AnthropicMessages",
    "estimate_tokens",
    "parse_count_request",
    "parse_messages_request",
]

# the client's headers an Anthropic upstream gets on a pass-through (never its key)
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")

# The gateway's token estimate (a guess, not a tokenizer): characters / 4 as for chat, a few
# tokens per message, and a flat figure per image (Anthropic bills about width*height/750: a
# 1092x1092 image is ~1,600 tokens) and per PDF (base64 characters / 16).
_IMAGE_TOKENS = 1600
_MESSAGE_TOKENS = 4


class AnthropicMessages:
    """`POST /v1/messages`: Anthropic's request and answer shapes around the canonical OpenAI chat."""

    name = "anthropic.messages"
    id_header = "request-id"  # Anthropic's own name for the request id (the SDKs read it)

    def chat_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """The request as OpenAI chat (raises Untranslatable, a 400, for what has no equivalent)."""
        return to_chat(body)

    def answer(self, chat: dict[str, Any]) -> dict[str, Any]:
        """A `chat.completion` as a Messages answer."""
        return to_message(chat)

    def stamp(self, answer: dict[str, Any], model_id: str, fields: dict[str, Any]) -> None:
        """`model` is the routed id; the `_...` fields go at the top level, as for chat."""
        answer["model"] = model_id
        answer.update(fields)

    def usage(self, answer: dict[str, Any]) -> Any:
        """OpenAI-style usage; cache reads and writes count as prompt tokens."""
        usage = answer.get("usage")
        return usage_of(usage) if isinstance(usage, dict) else None

    def stream(self, call: Call, model_id: str) -> ChunkTranslator | None:
        """OpenAI chunks -> Messages events."""
        return ChunkEvents(model_id, call.facts.prompt_tokens)

    def relay(self, call: Call, model_id: str) -> ChunkTranslator | None:
        """A native Messages stream passes unchanged; its usage is read on the way."""
        return NativeWatch()

    def error_body(self, error: RoutingError) -> dict[str, Any]:
        """`{"type": "error", "error": {"type", "message"}}`, routectl's code and details inside."""
        inner: dict[str, Any] = {"type": error_type(error.status), "message": error.message}
        inner["code"] = error.code
        inner.update(error.extra)
        return {"type": "error", "error": inner}

    def stream_error(self, error: RoutingError) -> bytes:
        """An `error` event."""
        return error_event(error_type(error.status), error.message, {"code": error.code})

    def foreign_error(self, status: int, body: bytes) -> bytes:
        """An upstream's error in OpenAI's shape as Anthropic's (its message kept)."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        error = data.get("error") if isinstance(data, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        if not isinstance(message, str) or not message:
            message = f"upstream answered {status}"
        inner: dict[str, Any] = {"type": error_type(status), "message": message}
        if isinstance(error, dict) and isinstance(error.get("code"), str | int):
            inner["upstream_code"] = error["code"]
        return orjson.dumps({"type": "error", "error": inner})


ANTHROPIC_MESSAGES = AnthropicMessages()


def _block_chars(block: dict[str, Any]) -> tuple[int, bool]:
    """Characters (or their token-equivalent) of one content block, and whether it is an image."""
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return (len(text) if isinstance(text, str) else 0), False
    if kind == "image":
        return _IMAGE_TOKENS * 4, True
    if kind == "document":
        source = block.get("source")
        data = source.get("data") if isinstance(source, dict) else None
        if isinstance(data, str):
            media = source.get("media_type") if isinstance(source, dict) else None
            return (len(data) // 4 if media == "application/pdf" else len(data)), False
        return 0, False
    if kind == "tool_use":
        return len(orjson.dumps(block.get("input") or {})) + len(str(block.get("name"))), False
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, str):
            return len(content), False
        chars, vision = 0, False
        for inner in content if isinstance(content, list) else ():
            if isinstance(inner, dict):
                c, v = _block_chars(inner)
                chars += c
                vision = vision or v
        return chars, vision
    if kind in ("thinking", "redacted_thinking"):
        text = block.get("thinking") or block.get("data")
        return (len(text) if isinstance(text, str) else 0), False
    return len(orjson.dumps(block)), False  # anything else: its JSON as text


def _content_chars(content: Any) -> tuple[int, bool]:
    if isinstance(content, str):
        return len(content), False
    chars, vision = 0, False
    for block in content if isinstance(content, list) else ():
        if isinstance(block, dict):
            c, v = _block_chars(block)
            chars += c
            vision = vision or v
    return chars, vision


def estimate_tokens(body: dict[str, Any]) -> tuple[int, bool]:
    """The gateway's estimate of a request's input tokens, and whether it holds an image."""
    chars, vision = _content_chars(body.get("system"))
    messages = body.get("messages")
    messages = messages if isinstance(messages, list) else []
    for msg in messages:
        if isinstance(msg, dict):
            c, v = _content_chars(msg.get("content"))
            chars += c
            vision = vision or v
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        chars += len(orjson.dumps(tools))
    return chars // 4 + _MESSAGE_TOKENS * len(messages), vision


def _facts(body: dict[str, Any]) -> RequestFacts:
    tokens, vision = estimate_tokens(body)
    max_out = body.get("max_tokens")
    return RequestFacts(
        prompt_tokens=tokens,
        needs_tools=bool(body.get("tools")),
        needs_vision=vision,
        max_output_tokens=max_out if isinstance(max_out, int) and max_out > 0 else 0,
    )


def _forwarded(headers: Mapping[str, str]) -> dict[str, str] | None:
    """The client's Anthropic headers that differ from what every upstream request carries."""
    out: dict[str, str] = {}
    version = headers.get("anthropic-version")
    if version and version != ANTHROPIC_VERSION:
        out["anthropic-version"] = version
    beta = headers.get("anthropic-beta")
    if beta:
        out["anthropic-beta"] = beta
    return out or None


def _load(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    check_depth(raw, body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' is required and must be a non-empty list")
    if not all(
        isinstance(m, dict) and m.get("role") in ("user", "assistant") and "content" in m
        for m in messages
    ):
        raise bad_request("each message needs a 'role' (user or assistant) and 'content'")
    return body


def _call(raw: bytes, body: dict[str, Any], headers: Mapping[str, str], stream: bool) -> Call:
    keys = len(body)
    facts = _facts(body)
    load_balancer, overrides = take_routing_keys(body)
    model = body.get("model")
    if load_balancer is None and (not isinstance(model, str) or not model):
        raise bad_request("'model' is required and must be a string")
    return Call(
        ANTHROPIC_MESSAGES,
        body,
        model if isinstance(model, str) else "",
        stream,
        facts,
        load_balancer,
        overrides,
        # the bytes go upstream as sent unless routectl took its own keys out of them
        raw=raw if len(body) == keys else None,
        headers=_forwarded(headers),
    )


def parse_messages_request(raw: bytes, headers: Mapping[str, str]) -> Call:
    """Decode and check a Messages request; RoutingError(invalid_request) when it is malformed."""
    body = _load(raw)
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise bad_request("'max_tokens' is required and must be a positive integer")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be a boolean")
    return _call(raw, body, headers, stream)


def parse_count_request(raw: bytes, headers: Mapping[str, str]) -> Call:
    """Decode and check a `count_tokens` request (a Messages request without max_tokens)."""
    return _call(raw, _load(raw), headers, False)
