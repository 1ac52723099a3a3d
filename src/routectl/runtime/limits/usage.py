"""A streamed OpenAI chat answer's usage, for the settlement of token and spend limits.

An OpenAI-compatible upstream reports a stream's usage only when asked (`stream_options.
include_usage`), in one last chunk with no choices. For a caller with token or spend limits the
gateway asks for it; when the client did not, that chunk is taken out again, so the client gets
exactly the stream it asked for (code that reads `chunk.choices[0]` on every chunk keeps working).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from routectl.runtime.dialects.stream import Chain, ChunkTranslator
from routectl.runtime.errors import RoutingError
from routectl.runtime.ingress.openai_stream import ModelStamp

if TYPE_CHECKING:
    from routectl.runtime.ingress import ClientFormat
    from routectl.runtime.request import Call

__all__ = ["UsageWatch", "WatchedFormat", "watch_usage"]

_USAGE = b'"usage"'
_NULLS = (b'"usage":null', b'"usage": null')
_NULL_VALUES = (b":null", b": null")


class UsageWatch:
    """Passes OpenAI chunk SSE on, reading the usage; with `strip`, drops the usage-only chunk."""

    __slots__ = ("_buffer", "error", "strip", "usage")

    def __init__(self, strip: bool) -> None:
        self.strip = strip
        self.error: str | None = None
        self.usage: dict[str, int] | None = None
        self._buffer = b""

    def feed(self, data: bytes) -> bytes:
        """The bytes to send on (all of them, less a stripped usage chunk)."""
        if not self._buffer:
            if not data:
                return data
            # (find, not `in`: a bytes `in` first tries its operand as an integer, and pays
            # for the TypeError that raises)
            if data.endswith(b"\n\n") and data.find(b"\r") < 0:
                return self._whole(data)
        *events, self._buffer = (self._buffer + data.replace(b"\r", b"")).split(b"\n\n")
        kept = [e for e in events if not self._read(e)]
        if not self.strip:
            return data  # read on the side, passed on as it came
        return b"".join(e + b"\n\n" for e in kept)

    def _whole(self, data: bytes) -> bytes:
        """`feed` of whole events (the usual read): only the events that mention usage are
        looked at (OpenAI writes `"usage":null` in every chunk once it is asked for), the one
        to strip cut out; the other bytes go on as they are."""
        at = data.find(_USAGE)
        if at < 0:
            return data
        pieces: list[bytes] = []
        done = 0  # data[:done] is in pieces (or dropped)
        while at >= 0:
            after = at + len(_USAGE)
            if data.startswith(_NULL_VALUES, after):  # `"usage":null`: nothing to read
                at = data.find(_USAGE, after)
                continue
            cut = data.rfind(b"\n\n", 0, at)
            start = 0 if cut < 0 else cut + 2
            end = data.find(b"\n\n", at)  # found: data ends with a blank line
            if self._parse(data[start:end]):
                pieces.append(data[done:start])
                done = end + 2
            at = data.find(_USAGE, end)
        if not pieces:
            return data
        pieces.append(data[done:])
        return b"".join(pieces)

    def _read(self, event: bytes) -> bool:
        """Record the usage an event reports; True when it is the usage-only chunk to drop."""
        if event.find(_USAGE) < 0 or any(event.find(n) >= 0 for n in _NULLS):
            return False
        return self._parse(event)

    def _parse(self, event: bytes) -> bool:
        """`_read` of an event known to hold a `"usage"` that is not null."""
        if event.startswith(b"data: ") and event.find(b"\n") < 0:  # one data line: the usual
            payload = event[6:]
        else:
            payload = b"\n".join(
                line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")
            )
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return False
        usage = chunk.get("usage") if isinstance(chunk, dict) else None
        if not isinstance(usage, dict):
            return False
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(prompt, int) and isinstance(completion, int):
            self.usage = {"prompt_tokens": prompt, "completion_tokens": completion}
        return self.strip and chunk.get("choices") == []

    def close(self) -> bytes:
        """What was held back (an unfinished last event) goes out as it came."""
        rest, self._buffer = self._buffer, b""
        return rest if self.strip else b""


class WatchedFormat:
    """A client format whose streams pass through a UsageWatch (everything else delegated)."""

    def __init__(self, inner: ClientFormat, strip: bool) -> None:
        self.inner = inner
        self.strip = strip

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def id_header(self) -> str | None:
        return self.inner.id_header

    def chat_body(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.inner.chat_body(body)

    def answer(self, chat: dict[str, Any]) -> dict[str, Any]:
        return self.inner.answer(chat)

    def stamp(self, answer: dict[str, Any], model_id: str, fields: dict[str, Any]) -> None:
        self.inner.stamp(answer, model_id, fields)

    def usage(self, answer: dict[str, Any]) -> Any:
        return self.inner.usage(answer)

    def stream(self, call: Call, model_id: str) -> ChunkTranslator | None:
        return self.inner.stream(call, model_id) or UsageWatch(self.strip)

    def relay(self, call: Call, model_id: str) -> ChunkTranslator | None:
        inner = self.inner.relay(call, model_id)
        watch = UsageWatch(self.strip)
        if inner is None:
            return watch
        if isinstance(inner, ModelStamp) and inner.watch is None:
            inner.watch = watch  # usage read (its chunk dropped), then the model stamped
            return inner
        return Chain(inner, watch)  # the format's own translation, then usage read

    def error_body(self, error: RoutingError) -> dict[str, Any]:
        return self.inner.error_body(error)

    def stream_error(self, error: RoutingError) -> bytes:
        return self.inner.stream_error(error)

    def foreign_error(self, status: int, body: bytes) -> bytes:
        return self.inner.foreign_error(status, body)


def watch_usage(call: Call) -> Call:
    """The call of an OpenAI chat stream with its usage read on the way (asked of the upstream
    when the client did not ask for it); other calls as they are."""
    if not call.stream or call.format.name != "openai.chat":
        return call
    # the call is changed in place, as its body is (dataclasses.replace of a Call costs ~5 µs;
    # the handler goes on with the watched call only)
    if call.include_usage:
        call.format = WatchedFormat(call.format, strip=False)
        return call
    body = call.body
    options = body.get("stream_options")
    body["stream_options"] = {
        **(options if isinstance(options, dict) else {}),
        "include_usage": True,
    }
    call.format = WatchedFormat(call.format, strip=True)
    call.raw = None
    return call
