"""Every answer a gateway gives in a test, checked against OpenAI's published schemas.

`record_answers(app)` puts a recorder in front of a routectl app: it keeps each answer's path,
status, content type and bytes (streams included, as written). `check_answers(records)` then
validates each against the schema OpenAI's OpenAPI document gives for it:

| answer | schema |
|---|---|
| `POST /v1/chat/completions`, JSON / each SSE `data:` | `CreateChatCompletionResponse` / `CreateChatCompletionStreamResponse` |
| `GET /v1/models`, `GET /v1/models/{id}` | `ListModelsResponse`, `Model` |
| `POST /v1/embeddings` | `CreateEmbeddingResponse` |
| `POST /v1/responses`, JSON / each SSE event | `Response` / the `ResponseStreamEvent` its `type` names |
| any error on an OpenAI route (and an error inside a chat stream) | `ErrorResponse` |

The schemas are vendored in `openai_schema/schemas.json` (MIT, license beside it; see
`openai_schema/vendor.py`), so these checks run wherever the tests run. The document still uses
OpenAPI 3.0's `nullable: true` in places: it is read as "or null".
"""

from __future__ import annotations

import base64
import contextvars
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["Answer", "check_answer", "check_answers", "record_answers", "schema_errors"]

SCHEMAS = Path(__file__).resolve().parent / "openai_schema" / "schemas.json"


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` as JSON Schema's "or null"."""
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def _document() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMAS.read_text(encoding="utf-8"))
    return {"components": _nullable(data["components"])}


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = {**_document(), "$ref": f"#/components/schemas/{name}"}
    return jsonschema.Draft202012Validator(schema)


@cache
def _event_schemas() -> dict[str, str]:
    """Responses stream event `type` -> the schema of that event."""
    schemas = _document()["components"]["schemas"]
    out: dict[str, str] = {}
    for option in schemas["ResponseStreamEvent"]["anyOf"]:
        name = option["$ref"].rsplit("/", 1)[-1]
        for kind in schemas[name]["properties"]["type"].get("enum", ()):
            out[kind] = name
    return out


def schema_errors(name: str, instance: Any) -> list[str]:
    """Why `instance` is not a valid `name` (empty when it is)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in _validator(name).iter_errors(instance)
    ]


# ---------------------------------------------------------------- recording answers


@dataclass
class Answer:
    """One answer as the client received it."""

    method: str
    path: str
    status: int
    content_type: str
    anthropic: bool  # asked with `anthropic-version` (Anthropic's list format of /v1/models)
    body: bytearray = field(default_factory=bytearray)


_CURRENT: contextvars.ContextVar[Answer | None] = contextvars.ContextVar(
    "routectl_test_answer", default=None
)
_original_write = web.StreamResponse.write


async def _recording_write(self: web.StreamResponse, data: bytes | bytearray | memoryview) -> None:
    answer = _CURRENT.get()
    if answer is not None and self.prepared:
        answer.body += bytes(data)
    await _original_write(self, data)


def record_answers(app: web.Application) -> list[Answer]:
    """Record every answer `app` gives from now on (call before the app starts)."""
    records: list[Answer] = []
    web.StreamResponse.write = _recording_write  # type: ignore[method-assign]

    @web.middleware
    async def recorder(request: web.Request, handler: Handler) -> web.StreamResponse:
        answer = Answer(request.method, request.path, 0, "", "anthropic-version" in request.headers)
        token = _CURRENT.set(answer)
        try:
            resp = await handler(request)
        finally:
            _CURRENT.reset(token)
        answer.status = resp.status
        answer.content_type = resp.content_type
        if isinstance(resp, web.Response) and not resp.prepared and resp.body is not None:
            body = resp.body
            answer.body += body if isinstance(body, bytes | bytearray) else str(body).encode()
        records.append(answer)
        return resp

    app.middlewares.insert(0, recorder)
    return records


# ---------------------------------------------------------------- checking answers


def _sse_data(body: bytes) -> Iterator[str]:
    for event in body.replace(b"\r", b"").split(b"\n\n"):
        lines = [line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")]
        if lines:
            yield b"\n".join(lines).decode()


def _openai_route(path: str) -> str | None:
    for route in ("/v1/chat/completions", "/v1/embeddings", "/v1/responses", "/v1/models"):
        if path == route or (route == "/v1/models" and path.startswith("/v1/models/")):
            return route
    if path.startswith("/api/user/"):
        return path
    return None


def _floats(reply: Any) -> Any:
    """An embeddings answer with base64 vectors decoded (as the SDK reads them): the document
    describes only `encoding_format: float`, OpenAI answers base64 as a string."""
    for item in reply.get("data") or () if isinstance(reply, dict) else ():
        value = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(value, str):
            raw = base64.b64decode(value)
            item["embedding"] = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return reply


def check_answer(answer: Answer) -> list[str]:
    """Every schema violation of one answer (nothing for routes OpenAI does not define)."""
    route = _openai_route(answer.path)
    if route is None or answer.anthropic:
        return []
    sse = answer.content_type == "text/event-stream"
    if answer.status >= 400:
        return schema_errors("ErrorResponse", json.loads(answer.body))
    if route.startswith("/api/user/"):
        return []
    if route == "/v1/models":
        name = "ListModelsResponse" if answer.path == "/v1/models" else "Model"
        return schema_errors(name, json.loads(answer.body))
    if route == "/v1/embeddings":
        return schema_errors("CreateEmbeddingResponse", _floats(json.loads(answer.body)))
    if route == "/v1/chat/completions":
        if not sse:
            return schema_errors("CreateChatCompletionResponse", json.loads(answer.body))
        problems: list[str] = []
        for data in _sse_data(bytes(answer.body)):
            if data == "[DONE]":
                continue
            chunk = json.loads(data)
            name = "ErrorResponse" if "error" in chunk else "CreateChatCompletionStreamResponse"
            problems += [f"chunk {data[:80]}: {p}" for p in schema_errors(name, chunk)]
        return problems
    # /v1/responses
    if not sse:
        return schema_errors("Response", json.loads(answer.body))
    problems = []
    events = _event_schemas()
    for data in _sse_data(bytes(answer.body)):
        event = json.loads(data)
        schema = events.get(event.get("type"))
        if schema is None:
            problems.append(f"event {data[:80]}: not a Responses stream event type")
            continue
        problems += [f"event {event['type']}: {p}" for p in schema_errors(schema, event)]
    return problems


def check_answers(records: list[Answer]) -> list[str]:
    """Every violation of every recorded answer, each prefixed by its request."""
    return [
        f"{a.method} {a.path} -> {a.status}: {problem}"
        for a in records
        for problem in check_answer(a)
    ]
