"""Parse and validate a chat-completion request body; strip routectl's own keys. Pure."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import orjson

from routectl.runtime.plan import RequestFacts
from routectl.runtime.resolve import Route, RoutingError

__all__ = ["ChatRequest", "apply_overrides", "estimate_facts", "parse_chat_request"]

# keys routectl understands and removes before the request goes upstream
_OWN_KEYS = frozenset(("load_balancer", "retry", "timeout", "orq"))
_MAX_RETRY = 10
_MAX_CALL_TIMEOUT_MS = 600_000


def _bad(message: str) -> RoutingError:
    return RoutingError("invalid_request", 400, message)


@dataclass(slots=True)
class ChatRequest:
    """A validated request: the body to forward (own keys removed) and routing directives."""

    body: dict[str, Any]
    model: str
    stream: bool
    facts: RequestFacts
    load_balancer: list[tuple[str, float]] | None = None
    retry_count: int | None = None
    retry_on: frozenset[str] | None = None
    call_timeout_ms: int | None = None


def estimate_facts(body: dict[str, Any]) -> RequestFacts:
    """Prompt tokens (characters / 4, plus a few per message), tools and image content."""
    chars = 0
    vision = False
    messages = body.get("messages") or ()
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        content = msg.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                kind = part.get("type")
                if kind == "text":
                    text = part.get("text")
                    chars += len(text) if isinstance(text, str) else 0
                elif kind in ("image_url", "input_image", "image"):
                    vision = True
                    chars += 340  # ~85 tokens: a low-detail image tile
    tokens = chars // 4 + 4 * len(messages)
    max_out = body.get("max_completion_tokens", body.get("max_tokens"))
    return RequestFacts(
        prompt_tokens=tokens,
        needs_tools=bool(body.get("tools") or body.get("functions")),
        needs_vision=vision,
        max_output_tokens=max_out if isinstance(max_out, int) and max_out > 0 else 0,
    )


def _weight(value: Any, where: str) -> float:
    if value is None:
        return 0.5
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{where}.weight must be a number")
    if not 0.001 <= value <= 1.0:
        raise _bad(f"{where}.weight must be between 0.001 and 1.0")
    return float(value)


def _load_balancer(value: Any) -> list[tuple[str, float]]:
    if not isinstance(value, dict):
        raise _bad("load_balancer must be an object")
    if value.get("type") != "weight_based":
        raise _bad("load_balancer.type must be 'weight_based'")
    unknown = set(value) - {"type", "models"}
    if unknown:
        raise _bad(f"load_balancer has unknown keys: {', '.join(sorted(unknown))}")
    models = value.get("models")
    if not isinstance(models, list) or not models:
        raise _bad("load_balancer.models must be a non-empty list")
    entries: list[tuple[str, float]] = []
    seen: set[str] = set()
    for i, item in enumerate(models):
        where = f"load_balancer.models[{i}]"
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("model"), str)
            or not item["model"]
        ):
            raise _bad(f"{where}.model must be a model name")
        if set(item) - {"model", "weight"}:
            raise _bad(f"{where} has unknown keys")
        name = item["model"]
        if name in seen:
            raise _bad(f"{where}.model repeats '{name}'")
        seen.add(name)
        entries.append((name, _weight(item.get("weight"), where)))
    return entries


def _retry(value: Any) -> tuple[int, frozenset[str] | None]:
    if not isinstance(value, dict) or set(value) - {"count", "on_codes"}:
        raise _bad("retry must be an object with 'count' and 'on_codes'")
    count = value.get("count", 0)
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= _MAX_RETRY:
        raise _bad(f"retry.count must be an integer from 0 to {_MAX_RETRY}")
    codes = value.get("on_codes")
    if codes is None:
        return count, None
    if not isinstance(codes, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and 400 <= c <= 599 for c in codes
    ):
        raise _bad("retry.on_codes must be a list of HTTP status codes (400-599)")
    return count, frozenset(str(c) for c in codes)


def _timeout(value: Any) -> int:
    if not isinstance(value, dict) or set(value) != {"call_timeout"}:
        raise _bad("timeout must be an object with 'call_timeout' (milliseconds)")
    ms = value["call_timeout"]
    if isinstance(ms, bool) or not isinstance(ms, int) or not 1 <= ms <= _MAX_CALL_TIMEOUT_MS:
        raise _bad(f"timeout.call_timeout must be an integer from 1 to {_MAX_CALL_TIMEOUT_MS} ms")
    return ms


def parse_chat_request(raw: bytes) -> ChatRequest:
    """Decode and validate a body; raise RoutingError(invalid_request) when it is malformed."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _bad("request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("'messages' is required and must be a non-empty list")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _bad("'stream' must be a boolean")
    request = ChatRequest(body, "", stream, estimate_facts(body))
    if not _OWN_KEYS.isdisjoint(body):
        # `orq` nesting, as in the weight-based load balancer's own docs
        nested = body.pop("orq", None)
        if nested is not None:
            if not isinstance(nested, dict) or set(nested) - {"retry", "timeout"}:
                raise _bad("orq may only carry 'retry' and 'timeout'")
            for k, v in nested.items():
                body.setdefault(k, v)
        if (lb := body.pop("load_balancer", None)) is not None:
            request.load_balancer = _load_balancer(lb)
        if (retry := body.pop("retry", None)) is not None:
            request.retry_count, request.retry_on = _retry(retry)
        if (timeout := body.pop("timeout", None)) is not None:
            request.call_timeout_ms = _timeout(timeout)
    model = body.get("model")
    if request.load_balancer is None and (not isinstance(model, str) or not model):
        raise _bad("'model' is required and must be a string")
    request.model = model if isinstance(model, str) else ""
    return request


def apply_overrides(route: Route, request: ChatRequest) -> Route:
    """The route with the request's `retry` and `timeout` applied (unchanged when absent)."""
    if request.retry_count is None and request.call_timeout_ms is None:
        return route
    changes: dict[str, Any] = {}
    if request.retry_count is not None:
        changes["max_attempts"] = request.retry_count + 1
        if request.retry_on is not None:
            transport = route.fallback_on & {"timeout", "connect_error"}
            changes["fallback_on"] = request.retry_on | transport
    if request.call_timeout_ms is not None:
        changes["timeout_ms"] = request.call_timeout_ms
    return replace(route, **changes)
