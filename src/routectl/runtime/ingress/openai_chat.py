"""The OpenAI Chat Completions format: parse a request body, shape the answer. Pure."""

from __future__ import annotations

from typing import Any

import orjson

from routectl.runtime.dialects.stream import ChunkTranslator
from routectl.runtime.errors import RoutingError
from routectl.runtime.ingress.depth import check_depth
from routectl.runtime.ingress.openai_errors import openai_error_body, openai_foreign_error
from routectl.runtime.ingress.openai_stream import ModelStamp
from routectl.runtime.ingress.openai_usage import UsageWatch
from routectl.runtime.options import MAX_JSON_DEPTH
from routectl.runtime.plan import RequestFacts
from routectl.runtime.request import OWN_KEYS, Call, bad_request, take_routing_keys

__all__ = ["OPENAI_CHAT", "OpenAIChat", "estimate_facts", "parse_chat_request"]


class OpenAIChat:
    """`POST /v1/chat/completions`: the canonical format itself."""

    name = "openai.chat"
    id_header = None

    def chat_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """Already OpenAI chat."""
        return body

    def answer(self, chat: dict[str, Any]) -> dict[str, Any]:
        """Already a chat.completion."""
        return chat

    def stamp(self, answer: dict[str, Any], model_id: str, fields: dict[str, Any]) -> None:
        """`model` is the routed id; the `_...` fields go at the top level."""
        answer["model"] = model_id
        answer.update(fields)

    def usage(self, answer: dict[str, Any]) -> Any:
        """`usage` as it is."""
        return answer.get("usage")

    def stream(self, call: Call, model_id: str) -> ChunkTranslator | None:
        """OpenAI chunks are this format's stream (their usage read when the limits ask)."""
        return None if call.usage_watch is None else UsageWatch(call.usage_watch)

    def relay(self, call: Call, model_id: str) -> ChunkTranslator | None:
        """Native chunks pass as they came, with the routed model id in each (and their usage
        read first when the limits ask: one translator, each event cut out once)."""
        if call.usage_watch is None:
            return ModelStamp(model_id)
        return ModelStamp(model_id, UsageWatch(call.usage_watch))

    def error_body(self, error: RoutingError) -> dict[str, Any]:
        """OpenAI's `{"error": {"message", "type", "param", "code", ...}}`."""
        return openai_error_body(error)

    def stream_error(self, error: RoutingError) -> bytes:
        """A `data:` line with the error body."""
        return b"data: " + orjson.dumps(openai_error_body(error)) + b"\n\n"

    def foreign_error(self, status: int, body: bytes) -> bytes:
        """An Anthropic upstream's error in OpenAI's shape (its message kept)."""
        return openai_foreign_error(status, body)


OPENAI_CHAT = OpenAIChat()


def estimate_facts(body: dict[str, Any]) -> RequestFacts:
    """Prompt tokens (characters / 4, plus a few per message), tools and image content."""
    chars = 0
    vision = False
    messages = body.get("messages") or ()
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        content = msg.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                kind = part.get("type")
                if kind == "text":
                    text = part.get("text")
                    chars += len(text) if isinstance(text, str) else 0
                elif kind in ("image_url", "input_image", "image"):
                    vision = True
                    chars += 340  # ~85 tokens: a low-detail image tile
    tokens = chars // 4 + 4 * len(messages)
    max_out = body.get("max_completion_tokens", body.get("max_tokens"))
    return RequestFacts(  # positional: keywords cost a named tuple half as much again
        tokens,  # prompt_tokens
        bool(body.get("tools") or body.get("functions")),  # needs_tools
        vision,  # needs_vision
        max_out if isinstance(max_out, int) and max_out > 0 else 0,  # max_output_tokens
    )


def parse_chat_request(raw: bytes) -> Call:
    """Decode and validate a body; raise RoutingError(invalid_request) when it is malformed."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    # check_depth's own first test, here: a body with fewer brackets cannot nest too deep, and
    # most requests skip the call
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH:
        check_depth(raw, body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' is required and must be a non-empty list")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be a boolean")
    facts = estimate_facts(body)
    load_balancer = overrides = None
    if not OWN_KEYS.isdisjoint(body):  # take_routing_keys' own first test, without its frame
        load_balancer, overrides = take_routing_keys(body)
    model = body.get("model")
    if load_balancer is None and (not isinstance(model, str) or not model):
        raise bad_request("'model' is required and must be a string")
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return Call(
        OPENAI_CHAT,
        body,
        model if isinstance(model, str) else "",
        stream,
        facts,
        load_balancer,
        overrides,
        include_usage,
    )
