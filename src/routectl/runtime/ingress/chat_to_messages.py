"""An OpenAI `chat.completion` as an Anthropic Messages answer, and what the non-streamed answer
and the stream share: stop reasons, usage, error types. Pure."""

from __future__ import annotations

from typing import Any

import orjson

from routectl.runtime.errors import RoutingError

__all__ = [
    "error_type",
    "message_id",
    "messages_usage",
    "stop_reason",
    "to_message",
    "tool_input",
]

_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

# Anthropic's error types by HTTP status (the SDKs pick their exception class by status; the
# type is what a program reads in the body)
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    """Anthropic's error `type` for an HTTP status."""
    found = _ERROR_TYPES.get(status)
    if found is not None:
        return found
    return "api_error" if status >= 500 else "invalid_request_error"


def stop_reason(finish_reason: Any, has_tool_calls: bool) -> str:
    """Anthropic's stop_reason for an OpenAI finish_reason."""
    if has_tool_calls and finish_reason in (None, "stop", "tool_calls", "function_call"):
        return "tool_use"  # some servers say "stop" after tool calls
    return _STOP.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"


def messages_usage(usage: Any) -> dict[str, int]:
    """Anthropic usage from OpenAI usage: cached prompt tokens are cache reads, not input."""
    u = usage if isinstance(usage, dict) else {}
    prompt = u.get("prompt_tokens")
    completion = u.get("completion_tokens")
    details = u.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    prompt = prompt if isinstance(prompt, int) else 0
    cached = cached if isinstance(cached, int) and 0 <= cached <= prompt else 0
    return {
        "input_tokens": prompt - cached,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": completion if isinstance(completion, int) else 0,
    }


def message_id(upstream_id: Any) -> str:
    """A `msg_` id that still names the upstream's."""
    if isinstance(upstream_id, str) and upstream_id:
        return upstream_id if upstream_id.startswith("msg_") else "msg_" + upstream_id
    return "msg_routectl"


def tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's arguments as the object Anthropic's `input` must be (502 when they are not
    one: the upstream's answer cannot be given to the client faithfully)."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}  # a tool without parameters: some servers send "" or nothing
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) else None
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise RoutingError(
            "upstream_error", 502, "The upstream answered tool arguments that are not a JSON object"
        )
    return parsed


def to_message(chat: dict[str, Any]) -> dict[str, Any]:
    """A Messages answer (`type: message`) for a `chat.completion`; only its first choice."""
    choices = chat.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = choice if isinstance(choice, dict) else {}
    msg = choice.get("message")
    msg = msg if isinstance(msg, dict) else {}
    content: list[dict[str, Any]] = []
    text = msg.get("content")
    if isinstance(text, list):  # content parts, as a few servers answer
        text = "".join(
            p["text"] for p in text if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    if isinstance(text, str) and text:
        # never an empty text block: Anthropic refuses one when the client sends the turn back
        content.append({"type": "text", "text": text})
    calls = msg.get("tool_calls")
    for i, call in enumerate(calls if isinstance(calls, list) else ()):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            continue
        call_id = call.get("id") if isinstance(call, dict) else None
        content.append(
            {
                "type": "tool_use",
                "id": call_id if isinstance(call_id, str) and call_id else f"toolu_{i}",
                "name": str(fn.get("name") or ""),
                "input": tool_input(fn.get("arguments")),
            }
        )
    reason = stop_reason(choice.get("finish_reason"), any(b["type"] == "tool_use" for b in content))
    # vLLM names the stop sequence that ended the text; OpenAI does not say which one
    matched = choice.get("stop_reason")
    sequence = matched if isinstance(matched, str) and reason == "end_turn" else None
    return {
        "id": message_id(chat.get("id")),
        "type": "message",
        "role": "assistant",
        "model": chat.get("model"),
        "content": content,
        "stop_reason": "stop_sequence" if sequence is not None else reason,
        "stop_sequence": sequence,
        "usage": messages_usage(chat.get("usage")),
    }
