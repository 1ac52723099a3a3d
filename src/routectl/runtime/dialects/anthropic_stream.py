"""Anthropic Messages SSE -> OpenAI `chat.completion.chunk` SSE, event by event; and the stop-reason
and usage mapping the non-streamed answer shares. Pure."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["StreamTranslator", "finish_reason", "usage_of"]

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "model_context_window_exceeded": "length",
}
_DONE = b"data: [DONE]\n\n"


def finish_reason(stop_reason: Any) -> str:
    """OpenAI's finish_reason for an Anthropic stop_reason."""
    return _FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def usage_of(usage: Any) -> dict[str, int]:
    """OpenAI usage from Anthropic usage; cache reads and writes count as prompt tokens."""
    u = usage if isinstance(usage, dict) else {}

    def n(key: str) -> int:
        v = u.get(key)
        return v if isinstance(v, int) else 0

    prompt = n("input_tokens") + n("cache_creation_input_tokens") + n("cache_read_input_tokens")
    completion = n("output_tokens")
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


class StreamTranslator:
    """Anthropic SSE bytes in, OpenAI chunk SSE bytes out, event by event (mutable parser state)."""

    def __init__(self, model: str, created: int, include_usage: bool = False) -> None:
        self.model = model
        self.created = created
        self.include_usage = include_usage
        self.id = "chatcmpl-anthropic"
        self.done = False  # message_stop (or an error event) was seen
        self.error: str | None = None  # the type of an in-stream error event
        self.usage: dict[str, int] | None = None  # set once the message has stopped
        self._buffer = b""
        self._raw_usage: dict[str, Any] = {}
        self._tools: dict[int, int] = {}  # Anthropic content block index -> OpenAI tool_call index
        self._argued: set[int] = set()  # tool calls that got some arguments text
        self._finish = "stop"

    def feed(self, data: bytes) -> bytes:
        """Translate every complete event in `data` (plus what was buffered); keep the rest."""
        # SSE allows CRLF; JSON payloads never hold a raw CR, so dropping them all is safe
        self._buffer += data.replace(b"\r", b"")
        *events, self._buffer = self._buffer.split(b"\n\n")
        out = bytearray()
        for event in events:
            if not self.done:
                out += self._event(event)
        return bytes(out)

    def close(self) -> bytes:
        """What to send when the upstream body ended: an error event if the message never stopped."""
        if self.done:
            return b""
        self.done = True
        self.error = "incomplete_stream"
        return self._error("upstream stream ended before message_stop")

    # ------------------------------------------------------------ one event

    def _event(self, raw: bytes) -> bytes:
        data = b"\n".join(
            line[5:].removeprefix(b" ") for line in raw.split(b"\n") if line.startswith(b"data:")
        )
        if not data:
            return b""
        try:
            ev = orjson.loads(data)
        except orjson.JSONDecodeError:
            return b""
        if not isinstance(ev, dict):
            return b""
        kind = ev.get("type")
        if kind == "message_start":
            msg = ev.get("message")
            if isinstance(msg, dict):
                if isinstance(msg.get("id"), str):
                    self.id = msg["id"]
                self._merge_usage(msg.get("usage"))
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "content_block_start":
            block = ev.get("content_block")
            if isinstance(block, dict) and block.get("type") == "tool_use":
                ti = self._tools[ev.get("index", -1)] = len(self._tools)
                call = {
                    "index": ti,
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": ""},
                }
                return self._chunk({"tool_calls": [call]})
            if isinstance(block, dict) and block.get("type") == "text" and block.get("text"):
                return self._chunk({"content": block["text"]})
            return b""
        if kind == "content_block_delta":
            delta = ev.get("delta")
            if not isinstance(delta, dict):
                return b""
            if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                return self._chunk({"content": delta["text"]})
            tool_index = self._tools.get(ev.get("index", -1))
            partial = delta.get("partial_json")
            if delta.get("type") == "input_json_delta" and tool_index is not None and partial:
                self._argued.add(tool_index)
                return self._chunk(
                    {"tool_calls": [{"index": tool_index, "function": {"arguments": partial}}]}
                )
            return b""  # thinking, signatures, empty JSON deltas: nothing OpenAI-shaped to say
        if kind == "message_delta":
            self._merge_usage(ev.get("usage"))
            delta = ev.get("delta")
            if isinstance(delta, dict):
                self._finish = finish_reason(delta.get("stop_reason"))
            return b""
        if kind == "message_stop":
            return self._stop()
        if kind == "error":
            err = ev.get("error")
            err = err if isinstance(err, dict) else {}
            self.done = True
            self.error = str(err.get("type") or "error")
            return self._error(str(err.get("message") or "upstream stream error"), self.error)
        if kind == "content_block_stop":
            tool_index = self._tools.get(ev.get("index", -1))
            if tool_index is not None and tool_index not in self._argued:
                # a tool without input streams no JSON at all; OpenAI clients json.loads the
                # assembled arguments, and the non-streamed answer says "{}" too
                self._argued.add(tool_index)
                return self._chunk(
                    {"tool_calls": [{"index": tool_index, "function": {"arguments": "{}"}}]}
                )
            return b""
        return b""  # ping, unknown events

    def _stop(self) -> bytes:
        self.done = True
        self.usage = usage_of(self._raw_usage)
        out = self._chunk({}, self._finish)
        if self.include_usage:
            tail = self._base()
            tail["choices"] = []
            tail["usage"] = self.usage
            out += b"data: " + orjson.dumps(tail) + b"\n\n"
        return out + _DONE

    def _merge_usage(self, usage: Any) -> None:
        # message_start carries input tokens, message_delta the cumulative output tokens
        if isinstance(usage, dict):
            self._raw_usage.update({k: v for k, v in usage.items() if isinstance(v, int)})

    def _base(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = self._base()
        chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    @staticmethod
    def _error(message: str, kind: str = "upstream_error") -> bytes:
        # the same in-band shape upstream.py sends when a passthrough stream breaks
        error = {"error": {"code": "upstream_error", "type": kind, "message": message}}
        return b"data: " + orjson.dumps(error) + b"\n\n"
