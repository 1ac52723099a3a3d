"""Anthropic Messages streams: OpenAI `chat.completion.chunk` SSE -> Messages events, event by
event (`ChunkEvents`), and a watcher of a native Messages stream passing through unchanged
(`NativeWatch`: its usage for the access log, an end that never came). Pure, mutable parser state.

The events, in Anthropic's order: `message_start`, `ping`, then per content block
`content_block_start`, `content_block_delta`..., `content_block_stop`, then `message_delta`
(stop_reason, usage) and `message_stop`; or an `error` event, after which nothing follows.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from routectl.runtime.dialects.anthropic_stream import usage_of
from routectl.runtime.ingress.chat_to_messages import (
    error_type,
    message_id,
    messages_usage,
    stop_reason,
)

__all__ = ["ChunkEvents", "NativeWatch", "error_event", "event"]

_DONE = b"[DONE]"
_PING = b'event: ping\ndata: {"type":"ping"}\n\n'
_COUNT = re.compile(rb'_tokens":\s*(\d+)')
_ERROR_TYPE = re.compile(rb'"error"\s*:\s*\{\s*"type"\s*:\s*"([^"\\]+)"')
_TAIL = 96  # bytes read again with the next chunk: longer than any key or marker watched


def event(name: str, data: dict[str, Any]) -> bytes:
    """One SSE event: `event: <name>` and its JSON data (the SDKs skip events without a name)."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def error_event(kind: str, message: str, extra: dict[str, Any] | None = None) -> bytes:
    """An in-stream `error` event (the SDKs raise it as an APIStatusError)."""
    error = {"type": kind, "message": message, **(extra or {})}
    return event("error", {"type": "error", "error": error})


def _events(buffer: bytes, data: bytes) -> tuple[list[bytes], bytes]:
    # SSE allows CRLF; JSON payloads never hold a raw CR, so dropping them all is safe
    *events, rest = (buffer + data.replace(b"\r", b"")).split(b"\n\n")
    return events, rest


def _data(raw: bytes) -> bytes:
    return b"\n".join(
        line[5:].removeprefix(b" ") for line in raw.split(b"\n") if line.startswith(b"data:")
    )


class ChunkEvents:
    """OpenAI chunk SSE bytes in, Anthropic Messages event bytes out."""

    def __init__(self, model: str, input_tokens: int) -> None:
        self.model = model
        self.input_tokens = input_tokens  # the router's estimate until the upstream says
        self.error: str | None = None
        self.usage: dict[str, int] | None = None  # OpenAI usage, once the upstream reported it
        self._buffer = b""
        self._started = False
        self._done = False
        self._index = -1  # the open content block, -1 when none
        self._kind = ""  # its type: "text" or "tool_use"
        self._tools: dict[int, int] = {}  # OpenAI tool_call index -> content block index
        self._finish: Any = None
        self._has_tools = False
        self._chars = 0  # of text and arguments: output tokens when the upstream reports none
        self._upstream_usage: dict[str, Any] | None = None

    def feed(self, data: bytes) -> bytes:
        """Translate every complete event in `data` (plus what was buffered); keep the rest."""
        events, self._buffer = _events(self._buffer, data)
        out = bytearray()
        for raw in events:
            if self._done:
                break
            payload = _data(raw)
            if not payload:
                continue
            if payload == _DONE:
                out += self._stop()
                continue
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if isinstance(chunk, dict):
                out += self._chunk(chunk)
        return bytes(out)

    def close(self) -> bytes:
        """The end of the upstream body: finish a message that was finished, else an error."""
        if self._done:
            return b""
        if self._finish is not None:  # an upstream that ends without `data: [DONE]`
            return self._stop()
        self._done = True
        self.error = "incomplete_stream"
        return error_event("api_error", "upstream stream ended before the message was complete")

    # ------------------------------------------------------------ one chunk

    def _chunk(self, chunk: dict[str, Any]) -> bytes:
        error = chunk.get("error")
        if isinstance(error, dict):  # an in-band error, the upstream's or routectl's own
            self._done = True
            self.error = str(error.get("type") or error.get("code") or "upstream_error")
            status = error.get("status")
            kind = error_type(status) if isinstance(status, int) else "api_error"
            return error_event(kind, str(error.get("message") or "upstream stream error"))
        out = b"" if self._started else self._start(chunk)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._upstream_usage = usage
            self.usage = {k: v for k, v in usage.items() if isinstance(v, int)}
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return out
        choice = choices[0]
        delta = choice.get("delta")
        if isinstance(delta, dict):
            text = delta.get("content")
            if isinstance(text, str) and text:
                out += self._text(text)
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                if isinstance(call, dict):
                    out += self._tool(call)
        if choice.get("finish_reason") is not None:
            self._finish = choice["finish_reason"]
        return out

    def _start(self, chunk: dict[str, Any]) -> bytes:
        self._started = True
        message: dict[str, Any] = {
            "id": message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": self.input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 0,
            },
        }
        return event("message_start", {"type": "message_start", "message": message}) + _PING

    def _open(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close_block()
        self._index += 1
        self._kind = kind
        start = {"type": "content_block_start", "index": self._index, "content_block": block}
        return out + event("content_block_start", start)

    def _close_block(self) -> bytes:
        if not self._kind:
            return b""
        self._kind = ""
        return event("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        data = {"type": "content_block_delta", "index": self._index, "delta": delta}
        return event("content_block_delta", data)

    def _text(self, text: str) -> bytes:
        out = b"" if self._kind == "text" else self._open("text", {"type": "text", "text": ""})
        self._chars += len(text)
        return out + self._delta({"type": "text_delta", "text": text})

    def _tool(self, call: dict[str, Any]) -> bytes:
        at = call.get("index", 0)
        fn = call.get("function")
        fn = fn if isinstance(fn, dict) else {}
        out = b""
        block = self._tools.get(at)
        if block is None:
            self._has_tools = True
            call_id = call.get("id")
            tool = {
                "type": "tool_use",
                "id": call_id if isinstance(call_id, str) and call_id else f"toolu_{at}",
                "name": str(fn.get("name") or ""),
                "input": {},
            }
            out += self._open("tool_use", tool)
            block = self._tools[at] = self._index
        elif block != self._index or self._kind != "tool_use":
            # arguments of an earlier call after a later one began: Messages blocks cannot
            # interleave, and reordering would withhold the stream; say so instead
            self._done = True
            self.error = "interleaved_tool_calls"
            return out + error_event(
                "api_error", "the upstream interleaved the arguments of parallel tool calls"
            )
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments:
            self._chars += len(arguments)
            out += self._delta({"type": "input_json_delta", "partial_json": arguments})
        return out

    def _stop(self) -> bytes:
        out = b"" if self._started else self._start({})
        out += self._close_block()
        self._done = True
        usage = self._usage()
        delta = {"stop_reason": stop_reason(self._finish, self._has_tools), "stop_sequence": None}
        out += event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        return out + event("message_stop", {"type": "message_stop"})

    def _usage(self) -> dict[str, int]:
        if self._upstream_usage is None:  # an upstream that reports none: an estimate
            return {"input_tokens": self.input_tokens, "output_tokens": self._chars // 4}
        return messages_usage(self._upstream_usage)


class NativeWatch:
    """Watches a Messages stream relayed unchanged: usage for the access log, in-stream errors,
    and an upstream that ends before `message_stop` (the client gets an `error` event then).

    It reads the bytes without splitting them into events or parsing JSON (that cost the relay
    more than everything else it does): a quote inside a JSON string is escaped and a newline
    is `\\n`, so `"output_tokens": 9` and a line that begins with `event: message_stop` can only
    be the stream's own. The last bytes of a chunk are read again with the next one, so a key or
    marker split between two chunks is still seen.
    """

    __slots__ = ("_error_seen", "_stopped", "_tail", "_usage", "error")

    def __init__(self) -> None:
        self.error: str | None = None
        self._usage: dict[bytes, int] = {}  # b"input" -> input_tokens...
        self._tail = b"\n"  # as if a line ended before the stream began
        self._stopped = False
        self._error_seen = False  # an error event began; its type may be in the next chunk

    @property
    def usage(self) -> dict[str, int] | None:
        """OpenAI-style usage once the message reported some."""
        if not self._usage:
            return None
        return usage_of({k.decode() + "_tokens": v for k, v in self._usage.items()})

    def feed(self, data: bytes) -> bytes:
        """`data` unchanged; what it says is read on the side."""
        seen = self._tail + data
        # message_start has the input, message_delta the cumulative output (and, lately, input):
        # in stream order, later counts replace earlier ones. A literal-led pattern is three
        # times faster than naming the keys; the key is the text since its opening quote.
        for found in _COUNT.finditer(seen):
            start = found.start()
            quote = seen.rfind(b'"', 0, start)
            if quote >= 0:
                self._usage[seen[quote + 1 : start]] = int(found.group(1))
        if not self._stopped and (
            b"\nevent: message_stop" in seen or b"\nevent:message_stop" in seen
        ):
            self._stopped = True
        if self.error is None or self._error_seen:
            self._read_error(seen)
        self._tail = seen[-_TAIL:]
        return data

    def _read_error(self, seen: bytes) -> None:
        at = seen.find(b"\nevent: error")
        if at < 0:
            at = seen.find(b"\nevent:error")
        if at < 0 and not self._error_seen:
            return
        kind = _ERROR_TYPE.search(seen, max(at, 0))
        if kind is not None:
            self.error, self._error_seen = kind.group(1).decode(), False
        else:  # the event's data is still on its way
            self.error, self._error_seen = "error", True

    def close(self) -> bytes:
        """An `error` event when the upstream ended the stream before `message_stop`."""
        if self._stopped or self.error is not None:
            return b""
        self.error = "incomplete_stream"
        return error_event("api_error", "upstream stream ended before message_stop")
