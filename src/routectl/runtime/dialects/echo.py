"""The built-in `echo` dialect: answers locally with the last user message (streaming too).

It needs no network and no key, so a fresh checkout serves requests; behind the dialect interface
it hands the upstream walk a `LocalReply` that reads like an HTTP answer.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from routectl.runtime.dialects.base import Attempt, Endpoint, Reply
from routectl.runtime.dialects.stream import ChunkTranslator
from routectl.table import Connection

__all__ = [
    "EchoDialect",
    "LocalReply",
    "count_tokens",
    "echo_completion",
    "echo_events",
    "last_user_text",
]

_JSON_HEADERS = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"}))
_SSE_HEADERS = CIMultiDictProxy(CIMultiDict({"Content-Type": "text/event-stream"}))


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


class _Chunks:
    """A body read chunk by chunk from a list (an SSE event each)."""

    __slots__ = ("_chunks",)

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def readany(self) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""


class LocalReply:
    """A 200 answer made in the process, read like an aiohttp ClientResponse."""

    __slots__ = ("content", "headers", "status")

    def __init__(self, chunks: list[bytes], headers: CIMultiDictProxy[str]) -> None:
        self.status = 200
        self.headers = headers
        self.content = _Chunks(chunks)

    async def read(self) -> bytes:
        body = b"".join(self.content._chunks)
        self.content._chunks = []
        return body

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass


async def _local(reply: LocalReply) -> Reply:
    return reply


class EchoDialect:
    """Answers with the last user message, as OpenAI chat (JSON or SSE)."""

    name = "echo"
    native = None

    def endpoint(self, connection: Connection, environ: Mapping[str, str]) -> Endpoint | None:
        """Local: no endpoint."""
        return None

    def problem(self, connection: Connection, environ: Mapping[str, str]) -> str | None:
        """Always available: no credentials needed."""
        return None

    def send(
        self,
        session: aiohttp.ClientSession,
        endpoint: Endpoint | None,
        attempt: Attempt,
        timeout: aiohttp.ClientTimeout,
    ) -> Awaitable[Reply]:
        """The echo answer for the attempt, as a reply."""
        created = int(time.time())
        cid = "chatcmpl-" + attempt.request_id
        body, model, tokens = attempt.body, attempt.model_id, attempt.prompt_tokens
        if attempt.stream:
            events, _ = echo_events(body, model, tokens, cid, created)
            return _local(LocalReply(events, _SSE_HEADERS))
        data = orjson.dumps(echo_completion(body, model, tokens, cid, created))
        return _local(LocalReply([data], _JSON_HEADERS))

    def decode(self, data: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
        """Already a chat.completion."""
        return data

    def translator(self, attempt: Attempt, include_usage: bool) -> ChunkTranslator | None:
        """Already OpenAI chunks; passed on as they are, with the usage they report."""
        return _Usage(_usage(attempt.prompt_tokens, last_user_text(attempt.body)))


class _Usage:
    """Passes echo's own chunks on unchanged and knows their usage up front."""

    __slots__ = ("error", "usage")

    def __init__(self, usage: dict[str, int]) -> None:
        self.error: str | None = None
        self.usage: dict[str, int] | None = usage

    def feed(self, data: bytes) -> bytes:
        return data

    def close(self) -> bytes:
        return b""
