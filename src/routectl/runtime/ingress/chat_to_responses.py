"""An OpenAI `chat.completion` as a Responses API `response` object. Pure.

The fields a Response repeats from its request (instructions, tools, tool_choice, temperature,
top_p, metadata, max_output_tokens, text, parallel_tool_calls) come from the request itself;
`store` is false (the gateway keeps nothing).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "function_call_item",
    "message_item",
    "response_object",
    "responses_usage",
    "to_response",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _id(prefix: str, raw: Any) -> str:
    return prefix + _UNSAFE.sub("", str(raw or "")) or prefix + "0"


def responses_usage(usage: Any) -> dict[str, Any] | None:
    """OpenAI chat usage as the Responses API's."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.get("total_tokens") or prompt + completion,
    }


def _tool(tool: Any) -> Any:
    """A function tool as a response repeats it: `strict` always there (null when not set)."""
    if isinstance(tool, dict) and tool.get("type") == "function":
        return {"strict": None, "parameters": None, **tool}
    return tool


def response_object(
    request: dict[str, Any], response_id: str, created: int, model: str, status: str
) -> dict[str, Any]:
    """A `response` with no output yet: what it repeats of its request, and its status."""
    text = request.get("text") if isinstance(request.get("text"), dict) else None
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model,
        "output": [],
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": None,
        "store": False,
        "temperature": request.get("temperature"),
        "text": text or {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": [_tool(t) for t in request.get("tools") or ()],
        "top_p": request.get("top_p"),
        "truncation": "disabled",
        "metadata": request.get("metadata") or {},
    }


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    """An assistant `message` output item with one `output_text` part."""
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [part],
    }


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    """A `function_call` output item."""
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def to_response(chat: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """The `response` for a chat answer to the chat form of `request`."""
    base = _id("", chat.get("id"))
    choices = chat.get("choices") or [{}]
    choice: dict[str, Any] = choices[0] if isinstance(choices[0], dict) else {}
    found = choice.get("message")
    message: dict[str, Any] = found if isinstance(found, dict) else {}
    finish = choice.get("finish_reason")
    incomplete = _INCOMPLETE.get(finish) if isinstance(finish, str) else None
    status = "incomplete" if incomplete else "completed"
    stamp = chat.get("created")
    created = stamp if isinstance(stamp, int) else 0
    out = response_object(request, "resp_" + base, created, str(chat.get("model", "")), status)
    output: list[dict[str, Any]] = []
    content = message.get("content")
    calls = message.get("tool_calls") or []
    if isinstance(content, str) and (content or not calls):
        output.append(message_item("msg_" + base, content, status))
    for i, call in enumerate(calls):
        fn = call.get("function") or {} if isinstance(call, dict) else {}
        call_id = str(call.get("id") or f"call_{base}_{i}")
        output.append(
            function_call_item(
                _id("fc_", call_id), call_id, str(fn.get("name")), str(fn.get("arguments") or "")
            )
        )
    out["output"] = output
    if incomplete:
        out["incomplete_details"] = {"reason": incomplete}
    usage = responses_usage(chat.get("usage"))
    if usage is not None:
        out["usage"] = usage
    return out
