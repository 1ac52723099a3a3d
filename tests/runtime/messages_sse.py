"""An Anthropic Messages SSE event-sequence validator, run over every stream the tests produce.

The grammar (Anthropic's streaming docs, and what the SDK's accumulator relies on):

    stream  := message_start body (message_delta message_stop)? | ... error
    body    := (ping | block)*
    block   := content_block_start(index=n, n = 0, 1, 2...) (ping | delta(index=n))* content_block_stop(index=n)

with deltas matching their block (text: text_delta/citations_delta; tool_use: input_json_delta;
thinking: thinking_delta/signature_delta), exactly one message_delta (a stop_reason and an integer
output_tokens) when the message completes, message_stop last, `error` allowed anywhere and final,
every event named (`event: X`) as its data's `type`, and nothing after the end.
"""

from __future__ import annotations

from typing import Any

import orjson

_DELTAS = {
    "text": {"text_delta", "citations_delta"},
    "tool_use": {"input_json_delta"},
    "server_tool_use": {"input_json_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "redacted_thinking": set(),
}
_STOP_REASONS = {
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
}


class StreamError(AssertionError):
    """A stream that breaks the Messages event grammar."""


def parse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each SSE event; every event must have both."""
    events = []
    for chunk in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        if not chunk.strip():
            continue
        name = None
        data = []
        for line in chunk.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].removeprefix(b" "))
            elif line and not line.startswith(b":"):
                raise StreamError(f"not an SSE field: {line!r}")
        if name is None:
            raise StreamError(f"an event without `event:` (the SDKs skip it): {chunk!r}")
        try:
            payload = orjson.loads(b"\n".join(data))
        except orjson.JSONDecodeError:
            raise StreamError(f"event {name}: data is not JSON: {chunk!r}") from None
        if not isinstance(payload, dict) or payload.get("type") != name:
            raise StreamError(f"event {name}: data.type is {payload.get('type')!r}")
        events.append((name, payload))
    return events


def validate(raw: bytes, *, complete: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """The events of a valid stream; StreamError naming the first violation otherwise.

    complete=False accepts a stream that stops early (a client that closed it)."""
    events = parse_events(raw)
    if not events:
        raise StreamError("an empty stream")
    started = delta_seen = stopped = False
    block: str | None = None  # the open block's type
    index = -1
    for i, (name, ev) in enumerate(events):
        where = f"event {i} ({name})"
        if stopped:
            raise StreamError(f"{where} after the end of the stream")
        if name == "error":
            err = ev.get("error")
            if not isinstance(err, dict) or not isinstance(err.get("type"), str):
                raise StreamError(f"{where}: error.type missing")
            if not isinstance(err.get("message"), str):
                raise StreamError(f"{where}: error.message missing")
            stopped = True
            continue
        if not started:
            if name != "message_start":
                raise StreamError(f"{where}: the stream must begin with message_start")
            msg = ev.get("message")
            if not isinstance(msg, dict) or msg.get("type") != "message":
                raise StreamError(f"{where}: message_start without a message")
            if msg.get("role") != "assistant" or msg.get("content") != []:
                raise StreamError(f"{where}: the message must start empty, from the assistant")
            if not isinstance(msg.get("usage", {}).get("input_tokens"), int):
                raise StreamError(f"{where}: message_start.usage.input_tokens missing")
            started = True
            continue
        if name == "ping":
            continue
        if delta_seen and name != "message_stop":
            raise StreamError(f"{where}: only message_stop may follow message_delta")
        if name == "content_block_start":
            if block is not None:
                raise StreamError(f"{where}: block {index} is still open")
            kind = ev.get("content_block", {}).get("type")
            if kind not in _DELTAS:
                raise StreamError(f"{where}: unknown block type {kind!r}")
            if ev.get("index") != index + 1:
                raise StreamError(f"{where}: index {ev.get('index')}, expected {index + 1}")
            block, index = kind, index + 1
        elif name == "content_block_delta":
            if block is None or ev.get("index") != index:
                raise StreamError(f"{where}: a delta for index {ev.get('index')} outside its block")
            kind = ev.get("delta", {}).get("type")
            if kind not in _DELTAS[block]:
                raise StreamError(f"{where}: a {kind} delta in a {block} block")
        elif name == "content_block_stop":
            if block is None or ev.get("index") != index:
                raise StreamError(f"{where}: stops index {ev.get('index')}, open is {index}")
            block = None
        elif name == "message_delta":
            if block is not None:
                raise StreamError(f"{where}: block {index} is still open")
            reason = ev.get("delta", {}).get("stop_reason")
            if reason not in _STOP_REASONS:
                raise StreamError(f"{where}: stop_reason {reason!r}")
            if not isinstance(ev.get("usage", {}).get("output_tokens"), int):
                raise StreamError(f"{where}: usage.output_tokens missing")
            delta_seen = True
        elif name == "message_stop":
            if not delta_seen:
                raise StreamError(f"{where}: message_stop before message_delta")
            stopped = True
        else:
            raise StreamError(f"{where}: unknown event")
    if complete and not stopped:
        raise StreamError("the stream ended without message_stop or an error")
    return events
