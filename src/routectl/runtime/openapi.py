"""`GET /openapi.json`: the runtime's own OpenAPI 3.1 document, every endpoint, request and error.

One registry, `OpenAPI`, per app (`app[OPENAPI]`): `create_app` adds the runtime's paths, a mount
adds its own (the explain endpoint does), and the document is built from it once per app. Adding
an endpoint is one `api.add(path, method, operation(...))` call beside its route, using the
shared pieces below (`json_body`, `answers`, the `ERROR` schema and the error sets).

Schemas describe what the gateway itself decides and writes (its errors, its lists and
collections, health, its `_routing` fields); bodies that come from upstreams (a completion, a
message) are described as open objects, since their shape is the provider's.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

__all__ = [
    "CHAT_REQUEST",
    "ERROR",
    "OPENAPI",
    "ROUTED_ERRORS",
    "OpenAPI",
    "answers",
    "describe_runtime",
    "json_body",
    "operation",
    "serve_openapi",
]

_JSON = "application/json"

ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "additionalProperties": True,
        }
    },
}
# Anthropic's shape, on the Messages routes
ANTHROPIC_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
            "additionalProperties": True,
        },
    },
}
_OPEN = {"type": "object", "additionalProperties": True}
_MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {"role": {"type": "string"}},
    "additionalProperties": True,
}
_LOAD_BALANCER = {
    "type": "object",
    "required": ["type", "models"],
    "properties": {
        "type": {"const": "weight_based"},
        "models": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["model"],
                "properties": {
                    "model": {"type": "string", "minLength": 1},
                    "weight": {"type": "number", "minimum": 0.001, "maximum": 1},
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}
_RETRY = {
    "type": "object",
    "properties": {
        "count": {"type": "integer", "minimum": 0, "maximum": 10},
        "on_codes": {"type": "array", "items": {"type": "integer", "minimum": 400, "maximum": 599}},
    },
    "additionalProperties": False,
}
_TIMEOUT = {
    "type": "object",
    "required": ["call_timeout"],
    "properties": {"call_timeout": {"type": "integer", "minimum": 1, "maximum": 600000}},
    "additionalProperties": False,
}
# routectl's own request keys, removed before the request goes upstream (SPEC §3)
_OWN_KEYS: dict[str, Any] = {
    "load_balancer": _LOAD_BALANCER,
    "retry": _RETRY,
    "timeout": _TIMEOUT,
    "orq": {
        "type": "object",
        "properties": {"retry": _RETRY, "timeout": _TIMEOUT},
        "additionalProperties": False,
    },
}
CHAT_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["messages"],
    # `model` is required unless a load_balancer names the models (400 invalid_request)
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
        "stream": {"type": "boolean"},
        **_OWN_KEYS,
    },
    "additionalProperties": True,
}
MESSAGES_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["messages"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["role", "content"],
                "properties": {
                    "role": {"enum": ["user", "assistant"]},
                    "content": {"type": ["string", "array"]},
                },
                "additionalProperties": True,
            },
        },
        "max_tokens": {"type": "integer", "minimum": 1},
        "stream": {"type": "boolean"},
        **_OWN_KEYS,
    },
    "additionalProperties": True,
}
EMBEDDINGS_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "input": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}},
                {"type": "array", "items": {"type": "integer"}},
                {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
            ]
        },
        "encoding_format": {"enum": ["float", "base64"]},
        "dimensions": {"type": "integer", "minimum": 1},
        "user": {"type": "string"},
        **_OWN_KEYS,
    },
    "additionalProperties": True,
}
RESPONSES_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "input": {"anyOf": [{"type": "string"}, {"type": "array", "items": _OPEN}]},
        "instructions": {"type": "string"},
        "stream": {"type": "boolean"},
        "max_output_tokens": {"type": "integer", "minimum": 1},
        **_OWN_KEYS,
    },
    "additionalProperties": True,
}
_MODEL = {
    "type": "object",
    "required": ["id", "object", "created", "owned_by"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "model"},
        "created": {"type": "integer"},
        "owned_by": {"type": "string"},
    },
}
MODEL_LIST: dict[str, Any] = {
    "type": "object",
    "required": ["object", "data"],
    "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": _MODEL}},
}
COLLECTION: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "scope", "routing_strategy", "member_count"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "scope": {"enum": ["system", "organization", "user"]},
        "routing_strategy": {"type": "string"},
        "member_count": {"type": "integer"},
        "models": {"type": "array", "items": _OPEN},
    },
    "additionalProperties": True,
}

# The errors any authenticated, routed request may answer (RoutingError codes of SPEC §3 and §5)
ROUTED_ERRORS = (400, 401, 403, 404, 413, 502, 503)
READ_ERRORS = (401,)


def json_body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    """A JSON requestBody."""
    return {"required": required, "content": {_JSON: {"schema": schema}}}


def answers(
    ok: dict[str, Any] | None,
    errors: tuple[int, ...] = (),
    *,
    error_schema: dict[str, Any] = ERROR,
    ok_status: int = 200,
    ok_types: tuple[str, ...] = (_JSON,),
) -> dict[str, Any]:
    """The responses object: the success body (None: no success) and each error status."""
    out: dict[str, Any] = {}
    if ok is not None:
        out[str(ok_status)] = {
            "description": "OK",
            "content": {t: {"schema": ok if t == _JSON else {"type": "string"}} for t in ok_types},
        }
    for status in errors:
        out[str(status)] = {
            "description": _DESCRIPTIONS.get(status, "Error"),
            "content": {_JSON: {"schema": error_schema}},
        }
    return out


_DESCRIPTIONS = {
    400: "invalid_request (malformed JSON, missing fields, nesting deeper than 64, a bad "
    "load_balancer)",
    401: "invalid_api_key",
    403: "access_denied",
    404: "model_not_found, collection_not_found or not_found",
    405: "managed_as_code, method_not_allowed",
    413: "request_too_large",
    502: "upstream_error, upstream_auth_error",
    503: "collection_no_models, model_unavailable; readyz: not ready",
}


def operation(
    summary: str,
    responses: dict[str, Any],
    *,
    body: dict[str, Any] | None = None,
    secure: bool = True,
    parameters: list[dict[str, Any]] | None = None,
    tags: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One operation object."""
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if body is not None:
        op["requestBody"] = body
    if parameters:
        op["parameters"] = parameters
    op["security"] = [{"bearer": []}] if secure else []
    if tags:
        op["tags"] = list(tags)
    return op


class OpenAPI:
    """The paths of one app's document."""

    def __init__(self) -> None:
        self.paths: dict[str, dict[str, Any]] = {}
        self._built: bytes | None = None

    def add(self, path: str, method: str, op: dict[str, Any]) -> None:
        """Describe `method path` (before the app starts)."""
        self.paths.setdefault(path, {})[method.lower()] = op
        self._built = None

    def document(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document."""
        return {
            "openapi": "3.1.0",
            "info": {
                "title": "routectl runtime",
                "version": "1",
                "description": "OpenAI- and Anthropic-compatible routing gateway; errors are "
                '`{"error": {"code", "message", ...}}` (Anthropic\'s shape on /v1/messages). '
                "Writes to /api/user/model-collections answer 405 managed_as_code: routing "
                "changes go through routing.yaml.",
            },
            "paths": {p: self.paths[p] for p in sorted(self.paths)},
            "components": {
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer"},
                    "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                },
                "schemas": {"Error": ERROR, "AnthropicError": ANTHROPIC_ERROR},
            },
        }

    def body(self) -> bytes:
        """The document's JSON bytes (built once)."""
        if self._built is None:
            self._built = orjson.dumps(self.document(), option=orjson.OPT_SORT_KEYS)
        return self._built


OPENAPI: web.AppKey[OpenAPI] = web.AppKey("routectl_openapi")


async def serve_openapi(request: web.Request) -> web.StreamResponse:
    """GET /openapi.json."""
    return web.Response(body=request.app[OPENAPI].body(), content_type=_JSON)


def describe_runtime(api: OpenAPI, collections: str) -> None:
    """The runtime's own endpoints (create_app's routes)."""
    messages_security: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
    api.add(
        "/v1/chat/completions",
        "post",
        operation(
            "OpenAI Chat Completions, routed (stream: true answers text/event-stream)",
            answers(_OPEN, ROUTED_ERRORS, ok_types=(_JSON, "text/event-stream")),
            body=json_body(CHAT_REQUEST),
            tags=("routing",),
        ),
    )
    messages = operation(
        "Anthropic Messages, routed like chat",
        answers(
            _OPEN,
            ROUTED_ERRORS,
            error_schema=ANTHROPIC_ERROR,
            ok_types=(_JSON, "text/event-stream"),
        ),
        body=json_body(MESSAGES_REQUEST),
        tags=("routing",),
    )
    messages["security"] = messages_security
    api.add("/v1/messages", "post", messages)
    count = operation(
        "Anthropic token count: the upstream's or the gateway's estimate",
        answers(
            {
                "type": "object",
                "required": ["input_tokens"],
                "properties": {"input_tokens": {"type": "integer"}},
                "additionalProperties": True,
            },
            (400, 401, 403, 404, 413, 503),
            error_schema=ANTHROPIC_ERROR,
        ),
        body=json_body(MESSAGES_REQUEST),
        tags=("routing",),
    )
    count["security"] = messages_security
    api.add("/v1/messages/count_tokens", "post", count)
    api.add(
        "/v1/models",
        "get",
        operation(
            "The models, collections and aliases the caller may use (Anthropic's paged list "
            "when the request carries anthropic-version)",
            answers(MODEL_LIST, READ_ERRORS),
            tags=("catalog",),
        ),
    )
    api.add(
        "/v1/models/{id}",
        "get",
        operation(
            "One model, collection or alias the caller may use (`{id}` may carry `/` plain or "
            "as %2F; Anthropic's ModelInfo when the request carries anthropic-version)",
            answers(_MODEL, (401, 404)),
            parameters=[
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            tags=("catalog",),
        ),
    )
    api.add(
        "/v1/embeddings",
        "post",
        operation(
            "OpenAI embeddings, routed like chat to models of kind embedding",
            answers(_OPEN, ROUTED_ERRORS),
            body=json_body(EMBEDDINGS_REQUEST),
            tags=("routing",),
        ),
    )
    api.add(
        "/v1/responses",
        "post",
        operation(
            "OpenAI Responses API, stateless (previous_response_id or store: true are a 400); "
            "stream: true answers text/event-stream",
            answers(_OPEN, ROUTED_ERRORS, ok_types=(_JSON, "text/event-stream")),
            body=json_body(RESPONSES_REQUEST),
            tags=("routing",),
        ),
    )
    api.add(
        "/dashboard",
        "get",
        operation(
            "The read-only dashboard page (it asks for a key and reads /dashboard/data)",
            answers({"type": "string"}, ok_types=("text/html",)),
            secure=False,
            tags=("dashboard",),
        ),
    )
    api.add(
        "/dashboard/dashboard.js",
        "get",
        operation(
            "The dashboard page's script",
            answers({"type": "string"}, ok_types=("text/javascript",)),
            secure=False,
            tags=("dashboard",),
        ),
    )
    api.add(
        "/dashboard/data",
        "get",
        operation(
            "What the dashboard shows the caller: its collections' shares, health, latency, "
            "request rate and cost over the last minutes, the table and its age",
            answers(_OPEN, READ_ERRORS),
            tags=("dashboard",),
        ),
    )
    api.add(
        collections,
        "get",
        operation(
            "Collections visible to the caller",
            answers(
                {
                    "type": "object",
                    "required": ["collections", "total"],
                    "properties": {
                        "collections": {"type": "array", "items": COLLECTION},
                        "total": {"type": "integer"},
                    },
                },
                READ_ERRORS,
            ),
            tags=("collections",),
        ),
    )
    name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    api.add(
        collections + "/{name}",
        "get",
        operation(
            "One collection with its members' live usage and health (the caller's deployments)",
            answers(COLLECTION, (401, 403, 404)),
            parameters=name,
            tags=("collections",),
        ),
    )
    for method in ("post", "put", "patch", "delete"):
        managed = operation(
            "405 managed_as_code: routing changes go through routing.yaml",
            answers(None, (405,)),
            secure=False,
            tags=("collections",),
        )
        api.add(collections, method, managed)
        api.add(collections + "/{name}", method, {**managed, "parameters": name})
    health = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    }
    api.add("/healthz", "get", operation("Liveness", answers(health), secure=False))
    api.add(
        "/readyz",
        "get",
        operation(
            "Readiness: a verified table, the upstream session open, not draining",
            {
                **answers(health),
                "503": {
                    "description": "starting or draining",
                    "content": {_JSON: {"schema": health}},
                },
            },
            secure=False,
        ),
    )
    metrics = operation(
        "Prometheus text format; with --metrics-token it needs that bearer token and shows "
        "every series, without one it shows the public series",
        answers({"type": "string"}, (401,), ok_types=("text/plain",)),
        secure=False,
    )
    metrics["security"] = [{}, {"bearer": []}]
    api.add("/metrics", "get", metrics)
    api.add(
        "/openapi.json",
        "get",
        operation("This document", answers(_OPEN), secure=False),
    )
