"""A relayed OpenAI chunk stream with the routed model id in every chunk. Pure, mutable state.

An OpenAI-compatible upstream names its own model in each chunk (`gpt-4o-2024-08-06`, or the
upstream name a connection maps the model to); a non-streamed answer carries the routed id
(`openai/gpt-4o`), and so must every chunk, or clients that read `chunk.model` see two names.
Each complete SSE event is passed on as it arrives with the value of its `"model"` keys
replaced, every other byte as the upstream sent it; an incomplete event waits for its end.

In valid JSON, `"model"` followed by `:` is a key unless its quote is escaped (`\\"model\\"` is
text inside a string), so the rewrite never touches message content.

An upstream writes the same `"model":"<its name>"` in every chunk: once the first has been found
key by key, the rest of the stream, when every `"model"` key in it is that exact sequence, is
rewritten in one pass (split on the sequence, joined with the routed one); the events read at
once after the first take it too. The sequence an upstream wrote is remembered per routed id, so
the next stream of that id tries the shortcut from its first event (a guess the shortcut checks:
a stream whose keys differ is walked key by key, and teaches its own sequence). The
instructions of one stream of the bench's six events (callgrind, per stream), before -> after:
read event by event 121,900 -> 115,300; the first event, then the rest 90,400 -> 66,600; all at
once 80,800 -> 55,800. The sequence holds the key's unescaped closing quote and colon, so it
cannot occur inside a JSON string either.
"""

from __future__ import annotations

import re

import orjson

from routectl.runtime.dialects.stream import ChunkTranslator

__all__ = ["ModelStamp"]

# after the key: spacing, the colon, and a string value (group 1)
_VALUE = re.compile(rb'\s*:\s*("(?:[^"\\]|\\.)*")')
_KEY = b'"model"'
_ESCAPED = b'\\"model"'  # left alone by the key-by-key walk: so by the shortcut too
# per routed id (as JSON): the last upstream sequence learned, its escaped form, its stamped form
_LEARNED: dict[bytes, tuple[bytes, bytes, bytes]] = {}
_MAX_LEARNED = 1024  # routed ids remembered (a table's models; cleared when more)
_NOTHING_LEARNED = (b"", b"", b"")


class ModelStamp:
    """Upstream OpenAI chunk bytes in, the same chunks with `model` = the routed id out."""

    __slots__ = ("_buffer", "_escaped", "_seen", "_stamped", "_value", "error", "watch")

    def __init__(self, model_id: str, watch: ChunkTranslator | None = None) -> None:
        self._value = value = orjson.dumps(model_id)
        self._buffer = b""
        # the upstream's last `"model": "<name>"` as it wrote it, and what replaces it: to begin
        # with, what the last stream of this routed id taught
        # (the sequence after a backslash, `_escaped`: the walk leaves that one alone)
        self._seen, self._escaped, self._stamped = _LEARNED.get(value, _NOTHING_LEARNED)
        self.error: str | None = None
        # a translator of whole events that runs first (the limits' usage watch): one
        # translator instead of a Chain of two, each event cut out of the stream once
        self.watch = watch

    @property
    def usage(self) -> dict[str, int] | None:
        """The usage the watch read (none without one: the chunks pass through)."""
        return None if self.watch is None else self.watch.usage

    def _shortcut(self, events: bytes) -> bytes | None:
        """`events` stamped in one pass when every `"model"` key in them is the upstream's known
        sequence (and none follows an escaped quote, which the walk would leave alone); None
        when the walk must do it. One split, then a search of each piece for another key: half
        the time of counting both sequences, searching for the escape, then replacing."""
        seen = self._seen
        if not seen or events.find(self._escaped) >= 0:
            return None
        pieces = events.split(seen)
        for piece in pieces:
            if piece.find(_KEY) >= 0:  # some other `"model"` key, or an escaped one
                return None
        return self._stamped.join(pieces)

    def _stamp(self, events: bytes) -> bytes:
        done = self._shortcut(events)
        if done is not None:
            return done
        # bytes.find and slicing: a regex over every chunk cost several microseconds each
        out: list[bytes] = []
        start = 0
        at = events.find(_KEY)
        while at >= 0:
            end = at + len(_KEY)
            if at == 0 or events[at - 1] != 0x5C:  # not an escaped quote: a key (or broken JSON)
                match = _VALUE.match(events, end)
                if match is not None:
                    value = match.start(1)
                    out += (events[start:value], self._value)
                    start = end = match.end()
                    if len(out) == 2:  # the first key: learn its sequence, try the rest with it
                        found = events[at:end]
                        if found != self._seen:
                            self._seen = found
                            self._escaped = b"\\" + found
                            self._stamped = events[at:value] + self._value
                            if len(_LEARNED) >= _MAX_LEARNED:
                                _LEARNED.clear()
                            _LEARNED[self._value] = (found, self._escaped, self._stamped)
                        done = self._shortcut(events[start:])
                        if done is not None:
                            out.append(done)
                            return b"".join(out)
            at = events.find(_KEY, end)
        if not out:
            return events
        out.append(events[start:])
        return b"".join(out)

    def feed(self, data: bytes) -> bytes:
        """Every complete event of `data` (after what was buffered), stamped."""
        buffer = self._buffer + data if self._buffer else data
        lf = buffer.rfind(b"\n\n")
        crlf = buffer.rfind(b"\r\n\r\n", lf + 1)  # a later CRLF end lies after the LF one
        end = max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)
        self._buffer = buffer[end:]
        if not end:
            return b""
        if self.watch is None:
            return self._stamp(buffer[:end])
        return self._stamp(self.watch.feed(buffer[:end]))

    def close(self) -> bytes:
        """What is left at the end of the body (an event without its blank line), stamped."""
        rest, self._buffer = self._buffer, b""
        if self.watch is not None:
            # (the watch holds nothing back of the whole events it was given: nothing to feed
            # it when nothing is left)
            rest = self.watch.feed(rest) + self.watch.close() if rest else self.watch.close()
        return self._stamp(rest) if rest else rest  # (the usual end: nothing was left)
