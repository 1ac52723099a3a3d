"""A Responses API request as an OpenAI chat request (for upstreams without /responses). Pure.

Stateless: the gateway keeps no responses, so `previous_response_id`, `store: true`,
`conversation` and `background` are refused before routing (responses_format.py). What has no
chat equivalent and would change the question if dropped (built-in tools such as web search,
item references, files by id) is refused with a 400 that says so; candidates whose upstream
serves the Responses API natively still take such a request (translatable.py).
"""

from __future__ import annotations

from typing import Any

from routectl.runtime.errors import RoutingError

__all__ = ["Untranslatable", "to_chat"]


class Untranslatable(RoutingError):
    """A Responses request with no faithful chat equivalent (400)."""

    def __init__(self, what: str) -> None:
        super().__init__(
            "invalid_request",
            400,
            f"{what} cannot be sent to a chat-completions upstream; route this request to a "
            "model whose upstream serves the Responses API (capability `responses`)",
        )


_ROLES = frozenset(("user", "assistant", "system", "developer"))


def _part(part: Any) -> dict[str, Any] | None:
    """One content part as a chat content part (None: dropped)."""
    if not isinstance(part, dict):
        raise Untranslatable("a content part that is not an object")
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": part.get("text") or ""}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise Untranslatable("an image by file id")
        image: dict[str, Any] = {"url": url}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        data = part.get("file_data")
        if not isinstance(data, str):
            raise Untranslatable("a file by id or URL")
        file: dict[str, Any] = {"file_data": data}
        if isinstance(part.get("filename"), str):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    if kind == "refusal":
        return None
    raise Untranslatable(f"a content part of type '{kind}'")


def _content(content: Any) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise Untranslatable("message content that is neither text nor a list of parts")
    parts = [p for p in map(_part, content) if p is not None]
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)  # plain text, as every chat server takes it
    return parts


def _messages(items: Any) -> list[dict[str, Any]]:
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    out: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            raise Untranslatable("an input item that is not an object")
        kind = item.get("type", "message")
        if kind == "message" and item.get("role") in _ROLES:
            out.append({"role": item["role"], "content": _content(item.get("content"))})
        elif kind == "function_call":
            call = {
                "id": item.get("call_id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments") or ""},
            }
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)  # parallel calls: one assistant turn
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _content(output)
            out.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": text})
        elif kind == "reasoning":
            continue  # a model's own reasoning items: only their author can read them
        else:
            raise Untranslatable(f"an input item of type '{kind}'")
    return out


def _tools(tools: Any) -> list[dict[str, Any]]:
    out = []
    for tool in tools or ():
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else tool
            raise Untranslatable(f"the built-in tool '{kind}'")
        function = {
            k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool
        }
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict):
        if choice.get("type") != "function":
            raise Untranslatable(f"tool_choice of type '{choice.get('type')}'")
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def _response_format(text: Any) -> dict[str, Any] | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema = {k: fmt[k] for k in ("name", "description", "schema", "strict") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise Untranslatable(f"text.format of type '{fmt['type']}'")


# Responses keys with the same meaning in chat
_SAME = ("temperature", "top_p", "user", "parallel_tool_calls", "top_logprobs")


def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The chat request for a Responses request (see the mapping table in docs/runtime.md)."""
    messages = _messages(body.get("input", []))
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.insert(0, {"role": "system", "content": instructions})
    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    chat.update({k: body[k] for k in _SAME if body.get(k) is not None})
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    if isinstance(body.get("max_output_tokens"), int):
        chat["max_completion_tokens"] = body["max_output_tokens"]
    response_format = _response_format(body.get("text"))
    if response_format is not None:
        chat["response_format"] = response_format
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort"):
        chat["reasoning_effort"] = reasoning["effort"]
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat
