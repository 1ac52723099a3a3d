"""Reading the usage of a streamed OpenAI chat answer, and taking out the usage-only chunk. Pure.

An OpenAI-compatible upstream reports a stream's usage only when asked (`stream_options.
include_usage`), in one last chunk with no choices. The limits ask for it to settle token and
spend limits (runtime/limits/usage.py); when the client did not, that chunk is taken out again,
so the client gets exactly the stream it asked for (code that reads `chunk.choices[0]` on every
chunk keeps working).
"""

from __future__ import annotations

import orjson

__all__ = ["UsageWatch"]

_USAGE = b'"usage"'
_NULL_VALUES = (b":null", b": null")  # what follows the key when there is nothing to read
_NULLS = tuple(_USAGE + value for value in _NULL_VALUES)


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
