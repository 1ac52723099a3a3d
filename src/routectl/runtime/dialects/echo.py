"""The built-in `echo` dialect: answers locally with the last user message (streaming too), or
with a call of the tool that `tool_choice` forces (arguments built from the tool's schema).

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

from routectl.runtime.dialects.base import Attempt, Endpoint, Reply, UpstreamSession
from routectl.runtime.dialects.stream import ChunkTranslator
from routectl.table import Connection

__all__ = [
    "EchoDialect",
    "LocalReply",
    "count_tokens",
    "echo_completion",
    "echo_events",
    "forced_call",
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


_EMPTY = {"number": 0, "integer": 0, "boolean": False, "array": [], "object": {}}


def forced_call(body: dict[str, Any]) -> dict[str, str] | None:
    """The function call echo answers when `tool_choice` forces one ("required": the first tool):
    `{"name", "arguments"}`, each required string parameter set to the last user message."""
    tools = [
        t["function"]
        for t in body.get("tools") or ()
        if isinstance(t, dict)
        and isinstance(t.get("function"), dict)
        and isinstance(t["function"].get("name"), str)
    ]
    choice = body.get("tool_choice")
    if not tools or choice is None or choice in ("auto", "none"):
        return None
    if isinstance(choice, dict):
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        tool = next((t for t in tools if t["name"] == name), None)
    else:  # "required"
        tool = tools[0]
    if tool is None:
        return None
    schema = tool.get("parameters")
    schema = schema if isinstance(schema, dict) else {}
    props = schema.get("properties")
    props = props if isinstance(props, dict) else {}
    text = last_user_text(body)
    arguments: dict[str, Any] = {}
    for name in schema.get("required") or ():
        kind = props.get(name, {}).get("type") if isinstance(props.get(name), dict) else None
        arguments[name] = text if kind == "string" else _EMPTY.get(str(kind))
    return {"name": tool["name"], "arguments": orjson.dumps(arguments).decode()}


def _answer(body: dict[str, Any]) -> tuple[str, dict[str, str] | None]:
    """Echo's answer: (text, None), or ("", the forced function call)."""
    call = forced_call(body)
    return ("", call) if call is not None else (last_user_text(body), None)


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
    """A chat.completion whose answer is the last user message (or the forced tool call)."""
    text, call = _answer(body)
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if call is not None:
        message["content"] = None
        message["tool_calls"] = [
            {"id": "call_" + completion_id, "type": "function", "function": call}
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "stop" if call is None else "tool_calls",
                "logprobs": None,
            }
        ],
        "usage": _usage(prompt_tokens, text if call is None else call["arguments"]),
    }


def echo_events(
    body: dict[str, Any], model: str, prompt_tokens: int, completion_id: str, created: int
) -> tuple[list[bytes], dict[str, int]]:
    """SSE events of a streamed echo (one chunk per word), ending with `data: [DONE]`; and the usage."""
    text, call = _answer(body)
    usage = _usage(prompt_tokens, text if call is None else call["arguments"])

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
    if call is not None:
        start: dict[str, Any] = {"index": 0, "id": "call_" + completion_id, "type": "function"}
        start["function"] = {"name": call["name"], "arguments": ""}
        events.append(event({"tool_calls": [start]}, None))
        arguments = {"index": 0, "function": {"arguments": call["arguments"]}}
        events.append(event({"tool_calls": [arguments]}, None))
    events.append(event({}, "stop" if call is None else "tool_calls"))
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
        session: UpstreamSession,
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

    def count_tokens(
        self,
        session: UpstreamSession,
        endpoint: Endpoint | None,
        attempt: Attempt,
        timeout: aiohttp.ClientTimeout,
    ) -> Awaitable[Reply] | None:
        """Echo counts nothing itself: the gateway's estimate stands."""
        return None

    def decode(self, data: dict[str, Any], attempt: Attempt) -> dict[str, Any]:
        """Already a chat.completion."""
        return data

    def translator(self, attempt: Attempt, include_usage: bool) -> ChunkTranslator | None:
        """Already OpenAI chunks; passed on as they are, with the usage they report."""
        text, call = _answer(attempt.body)
        return _Usage(_usage(attempt.prompt_tokens, text if call is None else call["arguments"]))


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
