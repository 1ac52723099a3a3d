"""An Anthropic Messages request as an OpenAI Chat Completions request, for an upstream that does
not speak Messages. Pure.

What has no Chat Completions equivalent is either dropped, when the answer stays meaningful without
it (`thinking`, `cache_control`, `top_k`, citations settings...), or refused with 400
invalid_request, when dropping it would change what the model is asked (server tools, files by id,
document URLs, MCP servers, content blocks of server tools). The table is in docs/runtime.md;
`tests/runtime/test_messages_translation.py` holds the corpus. Never a silent mis-translation.
"""

from __future__ import annotations

from typing import Any

import orjson

from routectl.runtime.errors import RoutingError

__all__ = ["DROPPED_KEYS", "Untranslatable", "to_chat"]


class Untranslatable(RoutingError):
    """A Messages request that an OpenAI-compatible upstream cannot be given faithfully (400)."""

    def __init__(self, what: str) -> None:
        super().__init__(
            "invalid_request",
            400,
            f"{what} cannot be sent to an OpenAI-compatible upstream; "
            "route this request to an Anthropic model",
        )


# top-level keys dropped on purpose: the answer is still the one asked for, without a
# provider-specific refinement (every other key `to_chat` does not name is dropped too)
DROPPED_KEYS = frozenset(
    (
        "thinking",  # extended thinking: no portable equivalent (its blocks are dropped too)
        "cache_control",  # prompt caching hints
        "top_k",
        "service_tier",
        "container",
        "context_management",
        "inference_geo",
        "speed",
        "diagnostics",
    )
)
_REFUSED = {"mcp_servers": "'mcp_servers' (remote MCP tools run by Anthropic)"}


def _text(block: dict[str, Any], where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise RoutingError("invalid_request", 400, f"{where}: a text block needs 'text'")
    return text


def _system(system: Any) -> str | None:
    if system is None:
        return None
    if isinstance(system, str):
        return system or None
    if not isinstance(system, list):
        raise RoutingError("invalid_request", 400, "'system' must be a string or text blocks")
    texts = []
    for block in system:
        if not isinstance(block, dict) or block.get("type") != "text":
            raise RoutingError("invalid_request", 400, "'system' blocks must be text blocks")
        texts.append(_text(block, "system"))
    # cache_control on system blocks is a caching hint: dropped with the block boundaries
    return "\n\n".join(t for t in texts if t) or None


def _image(block: dict[str, Any]) -> dict[str, Any]:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source, dict):
        media = source.get("media_type") or "image/png"
        url = f"data:{media};base64,{source.get('data') or ''}"
    elif kind == "url" and isinstance(source, dict) and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise Untranslatable(f"an image with a '{kind}' source")
    return {"type": "image_url", "image_url": {"url": url}}


def _document(block: dict[str, Any]) -> list[dict[str, Any]]:
    source = block.get("source")
    if not isinstance(source, dict):
        source = {}
    kind = source.get("type")
    if kind == "text":
        return [{"type": "text", "text": str(source.get("data") or "")}]
    if kind == "content":
        parts: list[dict[str, Any]] = []
        for inner in source.get("content") or ():
            if isinstance(inner, dict) and inner.get("type") == "text":
                parts.append({"type": "text", "text": _text(inner, "document")})
            elif isinstance(inner, dict) and inner.get("type") == "image":
                parts.append(_image(inner))
        return parts
    if kind == "base64" and source.get("media_type") == "application/pdf":
        # Chat Completions' file part; an upstream without PDF input refuses it itself
        title = block.get("title")
        name = title if isinstance(title, str) and title else "document.pdf"
        data = f"data:application/pdf;base64,{source.get('data') or ''}"
        return [{"type": "file", "file": {"filename": name, "file_data": data}}]
    raise Untranslatable(f"a document with a '{kind}' source")


def _tool_result(block: dict[str, Any], images: list[dict[str, Any]]) -> dict[str, Any]:
    """The tool message of a tool_result; its images go to `images` (tool messages hold text)."""
    content = block.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, list):
        texts = []
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part, dict):
                texts.append(_text(part, "tool_result"))
            elif kind == "image" and isinstance(part, dict):
                images.append(_image(part))
            elif kind == "document" and isinstance(part, dict):
                for p in _document(part):
                    if p["type"] == "text":
                        texts.append(p["text"])
                    else:
                        images.append(p)
            else:
                raise Untranslatable(f"a '{kind}' block inside a tool_result")
        text = "\n".join(texts)
    else:
        raise RoutingError("invalid_request", 400, "tool_result content must be text or blocks")
    return {"role": "tool", "tool_call_id": str(block.get("tool_use_id") or ""), "content": text}


def _user(content: Any, out: list[dict[str, Any]]) -> None:
    if isinstance(content, str):
        out.append({"role": "user", "content": content})
        return
    if not isinstance(content, list):
        raise RoutingError("invalid_request", 400, "message content must be a string or blocks")
    parts: list[dict[str, Any]] = []
    moved: list[dict[str, Any]] = []  # images out of tool results
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if not isinstance(block, dict):
            raise RoutingError("invalid_request", 400, "content blocks must be objects")
        if kind == "text":
            parts.append({"type": "text", "text": _text(block, "user message")})
        elif kind == "image":
            parts.append(_image(block))
        elif kind == "document":
            parts.extend(_document(block))
        elif kind == "tool_result":
            # Chat wants the tool messages right after the assistant's tool_calls, before any text
            out.append(_tool_result(block, moved))
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise Untranslatable(f"a '{kind}' content block")
    parts = moved + parts
    if len(parts) == 1 and parts[0]["type"] == "text":
        out.append({"role": "user", "content": parts[0]["text"]})
    elif parts:
        out.append({"role": "user", "content": parts})


def _assistant(content: Any) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    if not isinstance(content, list):
        raise RoutingError("invalid_request", 400, "message content must be a string or blocks")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if not isinstance(block, dict):
            raise RoutingError("invalid_request", 400, "content blocks must be objects")
        if kind == "text":
            texts.append(_text(block, "assistant message"))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            function = {"name": str(block.get("name") or ""), "arguments": arguments}
            calls.append(
                {"id": str(block.get("id") or ""), "type": "function", "function": function}
            )
        elif kind in ("thinking", "redacted_thinking"):
            continue  # signed reasoning only Anthropic can read back
        else:
            raise Untranslatable(f"a '{kind}' content block")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    elif not texts:
        message["content"] = ""
    return message


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise RoutingError("invalid_request", 400, "'tools' must be a list")
    out = []
    for tool in tools:
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise RoutingError("invalid_request", 400, "each tool needs a 'name'")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            # server tools and Anthropic-defined client tools (bash, text editor, computer...)
            raise Untranslatable(f"the '{kind}' tool")
        function: dict[str, Any] = {"name": tool["name"]}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        schema = tool.get("input_schema")
        function["parameters"] = (
            schema if isinstance(schema, dict) else {"type": "object", "properties": {}}
        )
        if isinstance(tool.get("strict"), bool):
            function["strict"] = tool["strict"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any, out: dict[str, Any]) -> None:
    if not isinstance(choice, dict):
        return
    kind = choice.get("type")
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        out["parallel_tool_calls"] = False


def _output_format(body: dict[str, Any]) -> dict[str, Any] | None:
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else body.get("output_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise Untranslatable("an output format other than json_schema")
    schema = fmt.get("schema")
    return {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }


def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The Chat Completions request for a Messages request (raises Untranslatable, 400)."""
    for key, what in _REFUSED.items():
        if body.get(key):
            raise Untranslatable(what)
    messages: list[dict[str, Any]] = []
    system = _system(body.get("system"))
    if system is not None:
        messages.append({"role": "system", "content": system})
    for msg in body.get("messages") or ():
        role = msg.get("role") if isinstance(msg, dict) else None
        if role == "user":
            _user(msg["content"] if isinstance(msg, dict) else None, messages)
        elif role == "assistant" and isinstance(msg, dict):
            messages.append(_assistant(msg.get("content")))
        else:
            raise RoutingError("invalid_request", 400, "message roles must be user or assistant")
    out: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    if isinstance(body.get("max_tokens"), int):
        out["max_tokens"] = body["max_tokens"]
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = value
    stops = body.get("stop_sequences")
    if isinstance(stops, list) and stops:
        out["stop"] = [s for s in stops if isinstance(s, str)]
    if body.get("tools"):
        out["tools"] = _tools(body["tools"])
        _tool_choice(body.get("tool_choice"), out)
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    response_format = _output_format(body)
    if response_format is not None:
        out["response_format"] = response_format
    if body.get("stream") is True:
        out["stream"] = True
        # message_delta reports usage: ask for it (the client's own stream says it in any case)
        out["stream_options"] = {"include_usage": True}
    return out
