"""A request as the upstream walk sees it, whatever format the client speaks, and routectl's own
request keys (`load_balancer`, `retry`, `timeout`, `orq`), which every format may carry. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from routectl.runtime.errors import RoutingError
from routectl.runtime.plan import RequestFacts
from routectl.runtime.routes import Overrides

if TYPE_CHECKING:
    from routectl.runtime.ingress import ClientFormat

__all__ = ["OWN_KEYS", "Call", "bad_request", "take_routing_keys"]

# keys routectl understands and removes before the request goes upstream
OWN_KEYS = frozenset(("load_balancer", "retry", "timeout", "orq"))
_MAX_RETRY = 10
_MAX_CALL_TIMEOUT_MS = 600_000


def bad_request(message: str) -> RoutingError:
    """400 invalid_request."""
    return RoutingError("invalid_request", 400, message)


@dataclass(slots=True)
class Call:
    """A validated request: its body in the client's format (own keys removed) and routing inputs."""

    format: ClientFormat
    body: dict[str, Any]
    model: str
    stream: bool
    facts: RequestFacts
    load_balancer: list[tuple[str, float]] | None = None
    overrides: Overrides | None = None
    include_usage: bool = False  # the client asked for usage in the stream
    # the limits read an OpenAI chat stream's usage: True takes its usage-only chunk out again
    # (the client did not ask for it), False passes it on; None: not read
    usage_watch: bool | None = None
    # for an upstream that speaks the client's format (`native`): the body's bytes when they may
    # go as sent (only `model` replaced), and client headers it should see (anthropic-beta...)
    raw: bytes | None = None
    headers: Mapping[str, str] | None = None
    _chat: dict[str, Any] | None = None

    def chat_body(self) -> dict[str, Any]:
        """The request as OpenAI chat, for an upstream that does not speak the client's format."""
        if self._chat is None:
            self._chat = self.format.chat_body(self.body)
        return self._chat


def _weight(value: Any, where: str) -> float:
    if value is None:
        return 0.5
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_request(f"{where}.weight must be a number")
    if not 0.001 <= value <= 1.0:
        raise bad_request(f"{where}.weight must be between 0.001 and 1.0")
    return float(value)


def _load_balancer(value: Any) -> list[tuple[str, float]]:
    if not isinstance(value, dict):
        raise bad_request("load_balancer must be an object")
    if value.get("type") != "weight_based":
        raise bad_request("load_balancer.type must be 'weight_based'")
    unknown = set(value) - {"type", "models"}
    if unknown:
        raise bad_request(f"load_balancer has unknown keys: {', '.join(sorted(unknown))}")
    models = value.get("models")
    if not isinstance(models, list) or not models:
        raise bad_request("load_balancer.models must be a non-empty list")
    entries: list[tuple[str, float]] = []
    seen: set[str] = set()
    for i, item in enumerate(models):
        where = f"load_balancer.models[{i}]"
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("model"), str)
            or not item["model"]
        ):
            raise bad_request(f"{where}.model must be a model name")
        if set(item) - {"model", "weight"}:
            raise bad_request(f"{where} has unknown keys")
        name = item["model"]
        if name in seen:
            raise bad_request(f"{where}.model repeats '{name}'")
        seen.add(name)
        entries.append((name, _weight(item.get("weight"), where)))
    return entries


def _retry(value: Any) -> tuple[int, frozenset[str] | None]:
    if not isinstance(value, dict) or set(value) - {"count", "on_codes"}:
        raise bad_request("retry must be an object with 'count' and 'on_codes'")
    count = value.get("count", 0)
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= _MAX_RETRY:
        raise bad_request(f"retry.count must be an integer from 0 to {_MAX_RETRY}")
    codes = value.get("on_codes")
    if codes is None:
        return count, None
    if not isinstance(codes, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and 400 <= c <= 599 for c in codes
    ):
        raise bad_request("retry.on_codes must be a list of HTTP status codes (400-599)")
    return count, frozenset(str(c) for c in codes)


def _timeout(value: Any) -> int:
    if not isinstance(value, dict) or set(value) != {"call_timeout"}:
        raise bad_request("timeout must be an object with 'call_timeout' (milliseconds)")
    ms = value["call_timeout"]
    if isinstance(ms, bool) or not isinstance(ms, int) or not 1 <= ms <= _MAX_CALL_TIMEOUT_MS:
        raise bad_request(
            f"timeout.call_timeout must be an integer from 1 to {_MAX_CALL_TIMEOUT_MS} ms"
        )
    return ms


def take_routing_keys(
    body: dict[str, Any],
) -> tuple[list[tuple[str, float]] | None, Overrides | None]:
    """Remove routectl's own keys from `body`: its load balancer and retry/timeout overrides."""
    if OWN_KEYS.isdisjoint(body):
        return None, None
    # `orq` nesting, as in the weight-based load balancer's own docs
    nested = body.pop("orq", None)
    if nested is not None:
        if not isinstance(nested, dict) or set(nested) - {"retry", "timeout"}:
            raise bad_request("orq may only carry 'retry' and 'timeout'")
        for k, v in nested.items():
            body.setdefault(k, v)
    load_balancer = None
    if (lb := body.pop("load_balancer", None)) is not None:
        load_balancer = _load_balancer(lb)
    retry_count: int | None = None
    retry_on: frozenset[str] | None = None
    call_timeout_ms: int | None = None
    if (retry := body.pop("retry", None)) is not None:
        retry_count, retry_on = _retry(retry)
    if (timeout := body.pop("timeout", None)) is not None:
        call_timeout_ms = _timeout(timeout)
    overrides = None
    if retry_count is not None or call_timeout_ms is not None:
        overrides = Overrides(retry_count, retry_on, call_timeout_ms)
    return load_balancer, overrides
