"""Routing tests for users' repositories: `routes.yaml` cases checked against explain's answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routectl.errors import RoutectlError
from routectl.review.access import index_for
from routectl.review.explain import explain_model, fresh_state, simulated_environ
from routectl.runtime.plan import RequestFacts
from routectl.table import RoutingTable

__all__ = [
    "CaseResult",
    "RouteCase",
    "RouteTestError",
    "check_case",
    "explain_case",
    "load_cases",
    "parse_cases",
]

_CASE_KEYS = {"name", "as", "model", "tools", "vision", "prompt_tokens", "expect"}
_EXPECT_KEYS = {"first", "order", "error", "connection"}


class RouteTestError(RoutectlError):
    """The routes file is malformed."""


@dataclass(frozen=True, slots=True)
class RouteCase:
    """One request and what routing must do with it."""

    name: str
    caller: str
    model: str
    tools: bool = False
    vision: bool = False
    prompt_tokens: int = 0
    first: str | None = None
    order: tuple[str, ...] | None = None
    error: str | None = None
    connection: str | None = None


@dataclass(frozen=True, slots=True)
class CaseResult:
    """A case and, when it failed, why."""

    case: RouteCase
    problem: str | None

    @property
    def passed(self) -> bool:
        """True when routing did what the case expects."""
        return self.problem is None


def _case(i: int, raw: Any) -> RouteCase:
    where = f"cases[{i}]"
    if not isinstance(raw, dict):
        raise RouteTestError(f"{where} must be a mapping")
    unknown = set(raw) - _CASE_KEYS
    if unknown:
        raise RouteTestError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
    for key in ("as", "model"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise RouteTestError(f"{where}.{key} is required and must be a string")
    expect = raw.get("expect")
    if not isinstance(expect, dict) or not expect or set(expect) - _EXPECT_KEYS:
        raise RouteTestError(f"{where}.expect must have first, order, error and/or connection")
    if "error" in expect and len(expect) > 1:
        raise RouteTestError(f"{where}.expect.error cannot be combined with other expectations")
    order = expect.get("order")
    if order is not None and (
        not isinstance(order, list) or not all(isinstance(x, str) for x in order)
    ):
        raise RouteTestError(f"{where}.expect.order must be a list of model names")
    tokens = raw.get("prompt_tokens", 0)
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        raise RouteTestError(f"{where}.prompt_tokens must be a non-negative integer")
    return RouteCase(
        name=str(raw.get("name") or f"{raw['as']} -> {raw['model']}"),
        caller=raw["as"],
        model=raw["model"],
        tools=bool(raw.get("tools", False)),
        vision=bool(raw.get("vision", False)),
        prompt_tokens=tokens,
        first=_text(expect.get("first"), f"{where}.expect.first"),
        order=tuple(order) if order is not None else None,
        error=_text(expect.get("error"), f"{where}.expect.error"),
        connection=_text(expect.get("connection"), f"{where}.expect.connection"),
    )


def _text(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise RouteTestError(f"{where} must be a string")


def parse_cases(data: Any) -> list[RouteCase]:
    """Cases from parsed YAML: a list, or a mapping with a `cases` list."""
    if isinstance(data, dict) and set(data) == {"cases"}:
        data = data["cases"]
    if not isinstance(data, list) or not data:
        raise RouteTestError(
            "the routes file must be a non-empty list of cases (or {cases: [...]})"
        )
    return [_case(i, raw) for i, raw in enumerate(data)]


def load_cases(path: str | Path) -> list[RouteCase]:
    """Read and check a routes.yaml."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RouteTestError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RouteTestError(f"{path} is not valid YAML: {exc}") from exc
    return parse_cases(data)


def explain_case(
    table: RoutingTable,
    caller: str,
    model: str,
    *,
    tools: bool = False,
    vision: bool = False,
    prompt_tokens: int = 0,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Explain one request in a fresh process; every key env var counts as set unless `environ`."""
    index = index_for(table)
    who = index.callers.get(caller)
    if who is None:
        raise RouteTestError(f"no user {caller!r} in the routing table")
    state = fresh_state(table, simulated_environ(table) if environ is None else environ)
    facts = RequestFacts(prompt_tokens=prompt_tokens, needs_tools=tools, needs_vision=vision)
    return explain_model(index, state, who, model, facts)


def _same(expected: str, member: str, model: str) -> bool:
    return expected in (member, model)


def _problem(case: RouteCase, data: dict[str, Any]) -> str | None:
    error = data.get("error")
    got = f"error {error['code']}" if error else f"first choice {data['candidates'][0]['member']}"
    if case.error is not None:
        if error and error["code"] == case.error:
            return None
        return f"expected error {case.error}, got {got}"
    if error:
        return f"expected a route, got {got}: {error['message']}"
    first = data["candidates"][0]
    if case.first is not None and not _same(case.first, first["member"], first["model"]):
        return f"expected first choice {case.first}, got {first['member']}"
    if case.connection is not None and case.connection != first["connection"]:
        return f"expected connection {case.connection}, got {first['connection']}"
    if case.order is not None:
        members = [(e["member"], e["model"]) for e in data["eligible"]]
        same = len(members) == len(case.order) and all(
            _same(want, *got_) for want, got_ in zip(case.order, members, strict=True)
        )
        if not same:
            return f"expected order {list(case.order)}, got {[m for m, _ in members]}"
    return None


def check_case(
    table: RoutingTable, case: RouteCase, environ: Mapping[str, str] | None = None
) -> CaseResult:
    """Run one case against the table."""
    try:
        data = explain_case(
            table,
            case.caller,
            case.model,
            tools=case.tools,
            vision=case.vision,
            prompt_tokens=case.prompt_tokens,
            environ=environ,
        )
    except RouteTestError as exc:
        return CaseResult(case, str(exc))
    return CaseResult(case, _problem(case, data))
