"""OpenAI chat chunks -> Responses API stream events, event by event as they arrive. Pure,
mutable parser state.

The events, in OpenAI's order: `response.created`, `response.in_progress`; for text
`response.output_item.added` (a message), `response.content_part.added`,
`response.output_text.delta`..., `response.output_text.done`, `response.content_part.done`,
`response.output_item.done`; for each tool call `response.output_item.added` (a function_call),
`response.function_call_arguments.delta`..., `response.function_call_arguments.done`,
`response.output_item.done`; then `response.completed` (or `response.incomplete` when the
answer was cut by `max_output_tokens`) with the whole response and its usage. An upstream that
fails mid-stream or ends early gets the client an `error` event, which ends the stream. Every
event carries an increasing `sequence_number`.
"""

from __future__ import annotations

from typing import Any

import orjson

from routectl.runtime.ingress.chat_to_responses import (
    function_call_item,
    message_item,
    response_object,
    responses_usage,
)

__all__ = ["ResponsesEvents", "error_event"]

_DONE = b"[DONE]"


def _frame(data: dict[str, Any]) -> bytes:
    kind: str = data["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def error_event(sequence: int, message: str, code: str | None) -> bytes:
    """An `error` event (the SDKs raise it)."""
    return _frame(
        {
            "type": "error",
            "code": code,
            "message": message,
            "param": None,
            "sequence_number": sequence,
        }
    )


class ResponsesEvents:
    """OpenAI chunk SSE bytes in, Responses API event bytes out."""

    def __init__(self, request: dict[str, Any], model: str, response_id: str, created: int) -> None:
        self.request = request
        self.model = model
        self.response_id = response_id
        self.created = created
        self.error: str | None = None
        self.usage: dict[str, int] | None = None  # OpenAI usage, once the upstream reported it
        self.sequence = 0
        self._buffer = b""
        self._started = False
        self._done = False
        self._output: list[dict[str, Any]] = []  # finished items
        self._text: str | None = None  # the open message's text, None when none is open
        self._call: dict[str, Any] | None = None  # the open function call item
        self._finish: Any = None

    # ------------------------------------------------------------ event helpers

    def _event(self, data: dict[str, Any]) -> bytes:
        data["sequence_number"] = self.sequence
        self.sequence += 1
        return _frame(data)

    def _response(self, status: str) -> dict[str, Any]:
        out = response_object(self.request, self.response_id, self.created, self.model, status)
        out["output"] = list(self._output)
        return out

    @property
    def _index(self) -> int:
        return len(self._output)

    def _start(self) -> bytes:
        self._started = True
        created = self._event(
            {"type": "response.created", "response": self._response("in_progress")}
        )
        return created + self._event(
            {"type": "response.in_progress", "response": self._response("in_progress")}
        )

    def _msg_id(self) -> str:
        return f"msg_{self.response_id.removeprefix('resp_')}_{self._index}"

    def _open_text(self) -> bytes:
        self._text = ""
        item = message_item(self._msg_id(), "", "in_progress")
        item["content"] = []
        added = self._event(
            {"type": "response.output_item.added", "output_index": self._index, "item": item}
        )
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        return added + self._event(
            {
                "type": "response.content_part.added",
                "item_id": item["id"],
                "output_index": self._index,
                "content_index": 0,
                "part": part,
            }
        )

    def _close_text(self, status: str = "completed") -> bytes:
        text, self._text = self._text or "", None
        item = message_item(self._msg_id(), text, status)
        where = {"item_id": item["id"], "output_index": self._index, "content_index": 0}
        out = self._event(
            {"type": "response.output_text.done", **where, "text": text, "logprobs": []}
        )
        out += self._event(
            {"type": "response.content_part.done", **where, "part": item["content"][0]}
        )
        out += self._event(
            {"type": "response.output_item.done", "output_index": self._index, "item": item}
        )
        self._output.append(item)
        return out

    def _open_call(self, call_id: str, name: str) -> bytes:
        self._call = function_call_item("fc_" + call_id, call_id, name, "", "in_progress")
        return self._event(
            {
                "type": "response.output_item.added",
                "output_index": self._index,
                "item": dict(self._call),
            }
        )

    def _close_call(self) -> bytes:
        call, self._call = self._call, None
        assert call is not None
        call["status"] = "completed"
        out = self._event(
            {
                "type": "response.function_call_arguments.done",
                "item_id": call["id"],
                "name": call["name"],
                "output_index": self._index,
                "arguments": call["arguments"],
            }
        )
        out += self._event(
            {"type": "response.output_item.done", "output_index": self._index, "item": call}
        )
        self._output.append(call)
        return out

    def _close_open(self, status: str = "completed") -> bytes:
        if self._text is not None:
            return self._close_text(status)
        if self._call is not None:
            return self._close_call()
        return b""

    # ------------------------------------------------------------ chunks

    def _chunk(self, chunk: dict[str, Any]) -> bytes:
        out = b"" if self._started else self._start()
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # n > 1 has no Responses equivalent: the first choice answers
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self._call is not None:
                    out += self._close_call()
                if self._text is None:
                    out += self._open_text()
                self._text = (self._text or "") + text
                out += self._event(
                    {
                        "type": "response.output_text.delta",
                        "item_id": self._msg_id(),
                        "output_index": self._index,
                        "content_index": 0,
                        "delta": text,
                        "logprobs": [],
                    }
                )
            for call in delta.get("tool_calls") or ():
                fn = call.get("function") or {}
                if call.get("id"):
                    out += self._close_open()
                    out += self._open_call(str(call["id"]), str(fn.get("name") or ""))
                arguments = fn.get("arguments")
                if self._call is not None and isinstance(arguments, str) and arguments:
                    self._call["arguments"] += arguments
                    out += self._event(
                        {
                            "type": "response.function_call_arguments.delta",
                            "item_id": self._call["id"],
                            "output_index": self._index,
                            "delta": arguments,
                        }
                    )
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return out

    def _end(self) -> bytes:
        self._done = True
        out = b"" if self._started else self._start()
        incomplete = self._finish in ("length", "content_filter")
        out += self._close_open("incomplete" if incomplete else "completed")
        response = self._response("incomplete" if incomplete else "completed")
        if incomplete:
            reason = "max_output_tokens" if self._finish == "length" else "content_filter"
            response["incomplete_details"] = {"reason": reason}
        usage = responses_usage(self.usage)
        if usage is not None:
            response["usage"] = usage
        kind = "response.incomplete" if incomplete else "response.completed"
        return out + self._event({"type": kind, "response": response})

    def _fail(self, message: str, code: str) -> bytes:
        self._done = True
        self.error = code
        return error_event(self._next(), message, code)

    def _next(self) -> int:
        self.sequence += 1
        return self.sequence - 1

    def feed(self, data: bytes) -> bytes:
        """Translate every complete chunk in `data` (plus what was buffered); keep the rest."""
        *events, self._buffer = (self._buffer + data.replace(b"\r", b"")).split(b"\n\n")
        out = bytearray()
        for raw in events:
            if self._done:
                break
            payload = b"\n".join(
                line[5:].strip() for line in raw.split(b"\n") if line.startswith(b"data:")
            )
            if not payload:
                continue
            if payload == _DONE:
                out += self._end()
                continue
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                out += self._fail("the upstream sent a chunk that is not JSON", "upstream_error")
                continue
            if isinstance(chunk, dict) and "error" in chunk:
                error = chunk["error"] if isinstance(chunk["error"], dict) else {}
                out += self._fail(str(error.get("message") or "upstream error"), "upstream_error")
                continue
            if isinstance(chunk, dict):
                out += self._chunk(chunk)
        return bytes(out)

    def close(self) -> bytes:
        """The upstream body ended: an error event unless the stream was finished."""
        if self._done:
            return b""
        return self._fail("the upstream stream ended before it was complete", "upstream_error")
