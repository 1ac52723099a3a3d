"""The `anthropic` dialect: OpenAI Chat Completions <-> Anthropic Messages API. Pure translation.

`to_anthropic` builds the Messages request body, `from_anthropic` turns a Messages response into
a `chat.completion`, and `StreamTranslator` turns Anthropic SSE bytes into OpenAI
`chat.completion.chunk` SSE lines as they arrive. No I/O here: upstream.py does the sending.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_TOKENS",
    "StreamTranslator",
    "endpoint",
    "finish_reason",
    "from_anthropic",
    "to_anthropic",
    "usage_of",
]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_BASE_URL = "https://api.anthropic.com/v1"
DEFAULT_MAX_TOKENS = (
    4096  # Anthropic requires max_tokens; used when neither request nor table sets it
)

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


def endpoint(base_url: str | None, api_key: str | None) -> tuple[str, dict[str, str]]:
    """The Messages URL and request headers of a connection (official API when no base_url)."""
    url = (base_url or DEFAULT_BASE_URL).rstrip("/") + "/messages"
    headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
    if api_key:
        headers["x-api-key"] = api_key
    return url, headers


# ---------------------------------------------------------------- request: OpenAI -> Anthropic


def _text_of(content: Any) -> str:
    """String content, or the text parts of list content joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p["text"]
            for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )
    return ""


def _image_block(part: dict[str, Any]) -> dict[str, Any] | None:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        return None
    if url.startswith("data:"):
        # data:<media type>;base64,<data>
        header, _, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if encoding != "base64" or not data:
            return None
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type or "image/png", "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    """OpenAI message content as Anthropic content blocks (parts it cannot carry are dropped)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    if not isinstance(content, list):
        return blocks
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            block = _image_block(part)
            if block is not None:
                blocks.append(block)
    return blocks


def _tool_use(call: Any) -> dict[str, Any] | None:
    if not isinstance(call, dict):
        return None
    fn = call.get("function")
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        return None
    args = fn.get("arguments")
    try:
        parsed = orjson.loads(args) if isinstance(args, str) and args else {}
    except orjson.JSONDecodeError:
        parsed = {}
    return {
        "type": "tool_use",
        "id": call.get("id") or "",
        "name": fn["name"],
        # Anthropic wants an object: a non-object argument value cannot be carried
        "input": parsed if isinstance(parsed, dict) else {},
    }


def _turns(messages: list[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """System texts, and user/assistant turns with consecutive same-role turns merged."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, content: str | list[dict[str, Any]]) -> None:
        if turns and turns[-1]["role"] == role:
            # Anthropic alternates roles: tool results and a following user message share a turn
            prev = turns[-1]["content"]
            if isinstance(prev, str):
                prev = [{"type": "text", "text": prev}] if prev else []
            extra = [{"type": "text", "text": content}] if isinstance(content, str) else content
            turns[-1]["content"] = prev + extra
        else:
            turns.append({"role": role, "content": content})

    for msg in messages:
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        content = msg.get("content")
        if role in ("system", "developer"):
            text = _text_of(content)
            if text:
                system.append(text)
        elif role == "user":
            add("user", content if isinstance(content, str) else _blocks(content))
        elif role == "assistant":
            blocks = _blocks(content)
            for call in msg.get("tool_calls") or ():
                use = _tool_use(call)
                if use is not None:
                    blocks.append(use)
            if blocks:
                add("assistant", blocks)
        elif role == "tool":
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": msg.get("tool_call_id") or "",
                "content": content if isinstance(content, str) else _blocks(content),
            }
            add("user", [result])
    return system, turns


def _tool(tool: Any) -> dict[str, Any] | None:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        return None
    fn = tool.get("function")
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        return None
    out: dict[str, Any] = {"name": fn["name"]}
    if isinstance(fn.get("description"), str):
        out["description"] = fn["description"]
    params = fn.get("parameters")
    out["input_schema"] = (
        params if isinstance(params, dict) else {"type": "object", "properties": {}}
    )
    return out


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict):
        fn = choice.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return {"type": "tool", "name": fn["name"]}
    return None


def to_anthropic(
    body: dict[str, Any], model: str, default_max_tokens: int | None
) -> dict[str, Any]:
    """A Messages API request body for an OpenAI chat request (`model`: the upstream's name).

    max_tokens: the request's max_completion_tokens / max_tokens, else `default_max_tokens` (the
    model's max_output_tokens), else DEFAULT_MAX_TOKENS. Keys Anthropic has no equivalent for
    (n, logprobs, penalties, response_format...) are dropped.
    """
    system, turns = _turns(body.get("messages") or [])
    out: dict[str, Any] = {"model": model}
    if system:
        out["system"] = "\n\n".join(system)
    out["messages"] = turns
    requested = body.get("max_completion_tokens")
    if requested is None:  # absent or an explicit null: the older name decides
        requested = body.get("max_tokens")
    if isinstance(requested, int) and not isinstance(requested, bool) and requested > 0:
        out["max_tokens"] = requested
    else:
        out["max_tokens"] = default_max_tokens or DEFAULT_MAX_TOKENS
    for key in ("temperature", "top_p"):
        if isinstance(body.get(key), int | float) and not isinstance(body.get(key), bool):
            out[key] = body[key]
    stop = body.get("stop")
    if isinstance(stop, str) and stop:
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        out["stop_sequences"] = [s for s in stop if isinstance(s, str) and s]
    tools = [t for t in map(_tool, body.get("tools") or ()) if t is not None]
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"))
        if body.get("parallel_tool_calls") is False:
            choice = choice or {"type": "auto"}
            if choice["type"] != "none":
                choice["disable_parallel_tool_use"] = True
        if choice is not None:
            out["tool_choice"] = choice
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}
    if body.get("stream") is True:
        out["stream"] = True
    return out


# ---------------------------------------------------------------- response: Anthropic -> OpenAI


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


def from_anthropic(data: dict[str, Any], model: str, created: int) -> dict[str, Any]:
    """A `chat.completion` for an Anthropic Messages response."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in data.get("content") or ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif block.get("type") == "tool_use":
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {
                        "name": block.get("name", ""),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
    }
    if calls:
        message["tool_calls"] = calls
    return {
        "id": data.get("id") or "chatcmpl-anthropic",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(data.get("stop_reason")),
                "logprobs": None,
            }
        ],
        "usage": usage_of(data.get("usage")),
    }


# ---------------------------------------------------------------- streaming


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
