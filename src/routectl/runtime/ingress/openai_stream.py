"""A relayed OpenAI chunk stream with the routed model id in every chunk. Pure, mutable state.

An OpenAI-compatible upstream names its own model in each chunk (`gpt-4o-2024-08-06`, or the
upstream name a connection maps the model to); a non-streamed answer carries the routed id
(`openai/gpt-4o`), and so must every chunk, or clients that read `chunk.model` see two names.
Each complete SSE event is passed on as it arrives with the value of its `"model"` keys
replaced, every other byte as the upstream sent it; an incomplete event waits for its end.

In valid JSON, `"model"` followed by `:` is a key unless its quote is escaped (`\\"model\\"` is
text inside a string), so the rewrite never touches message content.

An upstream writes the same `"model":"<its name>"` in every chunk: once one has been found key by
key, a chunk in which every `"model"` is that exact sequence is rewritten with one
`bytes.replace` (1.3 instead of 2.9 µs per chunk with the SSE parsing around it, timeit). The
sequence holds the key's unescaped closing quote and colon, so it cannot occur inside a JSON
string either.
"""

from __future__ import annotations

import re

import orjson

__all__ = ["ModelStamp"]

# after the key: spacing, the colon, and a string value (group 1)
_VALUE = re.compile(rb'\s*:\s*("(?:[^"\\]|\\.)*")')
_KEY = b'"model"'
_ESCAPED = b'\\"model"'  # left alone by the key-by-key walk: so by the shortcut too


class ModelStamp:
    """Upstream OpenAI chunk bytes in, the same chunks with `model` = the routed id out."""

    __slots__ = ("_buffer", "_seen", "_stamped", "_value", "error", "usage")

    def __init__(self, model_id: str) -> None:
        self._value = orjson.dumps(model_id)
        self._buffer = b""
        # the upstream's last `"model": "<name>"` as it wrote it, and what replaces it
        self._seen = b""
        self._stamped = b""
        self.error: str | None = None
        self.usage: dict[str, int] | None = None  # not read: the chunks pass through

    def _stamp(self, events: bytes) -> bytes:
        seen = self._seen
        if seen and events.count(_KEY) == events.count(seen) and _ESCAPED not in events:
            return events.replace(seen, self._stamped)
        # bytes.find and slicing: a regex over every chunk cost several microseconds each
        out: list[bytes] = []
        start = 0
        at = events.find(_KEY)
        while at >= 0:
            end = at + len(_KEY)
            if at == 0 or events[at - 1] != 0x5C:  # not an escaped quote: a key (or broken JSON)
                match = _VALUE.match(events, end)
                if match is not None:
                    head = events[at : match.start(1)]
                    self._seen = head + match.group(1)
                    self._stamped = head + self._value
                    out += (events[start : match.start(1)], self._value)
                    start = end = match.end()
            at = events.find(_KEY, end)
        if not out:
            return events
        out.append(events[start:])
        return b"".join(out)

    def feed(self, data: bytes) -> bytes:
        """Every complete event of `data` (after what was buffered), stamped."""
        buffer = self._buffer + data if self._buffer else data
        lf = buffer.rfind(b"\n\n")
        crlf = buffer.rfind(b"\r\n\r\n")
        end = max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)
        self._buffer = buffer[end:]
        return self._stamp(buffer[:end]) if end else b""

    def close(self) -> bytes:
        """What is left at the end of the body (an event without its blank line), stamped."""
        rest, self._buffer = self._buffer, b""
        return self._stamp(rest)
