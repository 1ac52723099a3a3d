"""The built-in `echo` dialect: answers locally with the last user message (streaming too)."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["count_tokens", "echo_completion", "echo_events", "last_user_text"]


def count_tokens(text: str) -> int:
    """The same rough estimate the router uses: characters / 4, at least 1 for non-empty text."""
    return max(1, len(text) // 4) if text else 0


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user message (text parts joined)."""
    for msg in reversed(body.get("messages") or ()):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(
                    p["text"]
                    for p in content
                    # a malformed part is the upstream's to refuse; echo just skips it
                    if isinstance(p, dict)
                    and p.get("type") == "text"
                    and isinstance(p.get("text"), str)
                )
    return ""


def _usage(prompt_tokens: int, text: str) -> dict[str, int]:
    completion = count_tokens(text)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    }


def echo_completion(
    body: dict[str, Any], model: str, prompt_tokens: int, completion_id: str, created: int
) -> dict[str, Any]:
    """A chat.completion whose answer is the last user message."""
    text = last_user_text(body)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": _usage(prompt_tokens, text),
    }


def echo_events(
    body: dict[str, Any], model: str, prompt_tokens: int, completion_id: str, created: int
) -> tuple[list[bytes], dict[str, int]]:
    """SSE events of a streamed echo (one chunk per word), ending with `data: [DONE]`; and the usage."""
    text = last_user_text(body)
    usage = _usage(prompt_tokens, text)

    def event(delta: dict[str, Any], finish: str | None) -> bytes:
        chunk = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    events = [event({"role": "assistant", "content": ""}, None)]
    words = text.split(" ")
    for i, word in enumerate(words):
        piece = word if i == 0 else " " + word
        if piece:
            events.append(event({"content": piece}, None))
    events.append(event({}, "stop"))
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        tail = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": usage,
        }
        events.append(b"data: " + orjson.dumps(tail) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events, usage
