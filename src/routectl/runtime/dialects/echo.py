"""The built-in `echo` dialect: answers locally with the last user message (streaming too), or
with a call of the tool that `tool_choice` forces (arguments built from the tool's schema).
It honours what a new user tries first: `max_tokens` / `max_completion_tokens` (the answer is
cut, `finish_reason: length`), `stop`, `n`, `stream_options.include_usage`.

It needs no network and no key, so a fresh checkout serves requests; behind the dialect interface
it hands the upstream walk a `LocalReply` that reads like an HTTP answer.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping
from typing import Any, NamedTuple

import aiohttp
import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from routectl.runtime.dialects.base import Attempt, Endpoint, Reply, UpstreamSession
from routectl.runtime.dialects.echo_embeddings import echo_embeddings
from routectl.runtime.dialects.stream import ChunkTranslator
from routectl.table import Connection, Model

EMBEDDINGS = "openai.embeddings"

__all__ = [
    "EchoAnswer",
    "EchoDialect",
    "LocalReply",
    "count_tokens",
    "echo_answer",
    "echo_completion",
    "echo_events",
    "forced_call",
    "last_user_text",
]

_JSON_HEADERS = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"}))
_SSE_HEADERS = CIMultiDictProxy(CIMultiDict({"Content-Type": "text/event-stream"}))


_CHARS_PER_TOKEN = 4


def count_tokens(text: str) -> int:
    """The same rough estimate the router uses: characters / 4, at least 1 for non-empty text."""
    return max(1, len(text) // _CHARS_PER_TOKEN) if text else 0


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


class EchoAnswer(NamedTuple):
    """What echo answers a request with, per choice (every choice is the same)."""

    text: str
    call: dict[str, str] | None  # the forced function call, when tool_choice requires one
    finish: str  # "stop", "length" or "tool_calls"
    n: int  # how many choices

    def usage(self, prompt_tokens: int) -> dict[str, int]:
        """OpenAI usage: every choice's tokens count (as OpenAI bills `n`)."""
        out = count_tokens(self.text if self.call is None else self.call["arguments"])
        completion = out * self.n
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        }


_MAX_N = 128  # OpenAI's bound on `n`


def _stops(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [s for s in value if isinstance(s, str) and s]
    return []


def _limit(body: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def echo_answer(body: dict[str, Any]) -> EchoAnswer:
    """Echo's answer: the forced tool call, or the last user message cut at the first `stop`
    sequence and then at `max_completion_tokens` / `max_tokens` (4 characters a token, the
    router's estimate: `finish_reason` "length" when it cut), `n` times."""
    n = body.get("n")
    n = n if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= _MAX_N else 1
    call = forced_call(body)
    if call is not None:
        return EchoAnswer("", call, "tool_calls", n)
    text = last_user_text(body)
    cuts = [at for stop in _stops(body.get("stop")) if (at := text.find(stop)) >= 0]
    if cuts:
        text = text[: min(cuts)]
    limit = _limit(body)
    if limit is not None and count_tokens(text) > limit:
        return EchoAnswer(text[: limit * _CHARS_PER_TOKEN], None, "length", n)
    return EchoAnswer(text, None, "stop", n)


def _call_id(completion_id: str, index: int) -> str:
    return f"call_{completion_id}" if index == 0 else f"call_{completion_id}_{index}"


def echo_completion(
    body: dict[str, Any], model: str, prompt_tokens: int, completion_id: str, created: int
) -> dict[str, Any]:
    """A chat.completion whose answer is the last user message (or the forced tool call)."""
    answer = echo_answer(body)
    choices = []
    for index in range(answer.n):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": answer.text,
            "refusal": None,
            "annotations": [],
        }
        if answer.call is not None:
            message["content"] = None
            message["tool_calls"] = [
                {"id": _call_id(completion_id, index), "type": "function", "function": answer.call}
            ]
        choices.append(
            {"index": index, "message": message, "finish_reason": answer.finish, "logprobs": None}
        )
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": answer.usage(prompt_tokens),
    }


def echo_events(
    body: dict[str, Any], model: str, prompt_tokens: int, completion_id: str, created: int
) -> tuple[list[bytes], dict[str, int]]:
    """SSE events of a streamed echo (one chunk per word, choice after choice), ending with
    `data: [DONE]`; and the usage. With `stream_options.include_usage`, as OpenAI streams it:
    `"usage": null` on every chunk, then a last chunk with no choices and the usage."""
    answer = echo_answer(body)
    usage = answer.usage(prompt_tokens)
    options = body.get("stream_options")
    with_usage = isinstance(options, dict) and options.get("include_usage") is True

    def event(index: int, delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
        chunk: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [choice],
        }
        if with_usage:
            chunk["usage"] = None
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    events = []
    words = answer.text.split(" ")
    for index in range(answer.n):
        events.append(event(index, {"role": "assistant", "content": "", "refusal": None}, None))
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            if piece:
                events.append(event(index, {"content": piece}, None))
        if answer.call is not None:
            start: dict[str, Any] = {
                "index": 0,
                "id": _call_id(completion_id, index),
                "type": "function",
                "function": {"name": answer.call["name"], "arguments": ""},
            }
            events.append(event(index, {"tool_calls": [start]}, None))
            arguments = {"index": 0, "function": {"arguments": answer.call["arguments"]}}
            events.append(event(index, {"tool_calls": [arguments]}, None))
        events.append(event(index, {}, answer.finish))
    if with_usage:
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

    def at_eof(self) -> bool:
        return not self._chunks


class LocalReply:
    """A 200 answer made in the process, read like an aiohttp ClientResponse."""

    __slots__ = ("content", "content_length", "content_type", "headers", "status")

    def __init__(self, chunks: list[bytes], headers: CIMultiDictProxy[str]) -> None:
        self.status = 200
        self.headers = headers
        self.content = _Chunks(chunks)
        self.content_length: int | None = None  # as a chunked answer
        self.content_type = headers["Content-Type"]  # (the dialect's own, a bare media type)

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

    def native_for(self, fmt: str, model: Model | None) -> bool:
        """Embeddings are answered as asked; chat-like requests through OpenAI chat."""
        return fmt == EMBEDDINGS

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
        if attempt.format == EMBEDDINGS:
            data = orjson.dumps(echo_embeddings(body, model, tokens))
            return _local(LocalReply([data], _JSON_HEADERS))
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
        return _Usage(echo_answer(attempt.body).usage(attempt.prompt_tokens))


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
