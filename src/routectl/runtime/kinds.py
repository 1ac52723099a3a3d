"""A request goes to models of the kind its endpoint serves: chat completions, messages and
responses to `chat` models, embeddings to `embedding` models (routing.yaml's `kind`). Pure.

Validation keeps every collection to one kind, so a collection's first member tells its kind.
"""

from __future__ import annotations

from routectl.runtime.errors import RoutingError
from routectl.runtime.routes import Route

__all__ = ["FORMAT_KINDS", "require_kind"]

# client format -> the model kind it needs (every other format needs `chat`)
FORMAT_KINDS = {"openai.embeddings": "embedding"}
_ENDPOINTS = {"chat": "a chat endpoint", "embedding": "POST /v1/embeddings"}


def require_kind(route: Route, fmt: str) -> None:
    """Raise a 400 when the route's models are not of the kind format `fmt` needs."""
    want = FORMAT_KINDS.get(fmt, "chat")
    members = route.members if route.kind == "load_balancer" else route.members[:1]
    for m in members:
        have = m.info.kind if m.info is not None else "chat"
        if have != want:
            what = (
                f"collection '{route.collection.name}'" if route.collection else f"'{m.model_id}'"
            )
            raise RoutingError(
                "invalid_request",
                400,
                f"{what} serves {have} models; {_ENDPOINTS[have]} takes it, this endpoint needs "
                f"{want} models",
                param="model",
            )
