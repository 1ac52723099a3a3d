"""Model kinds (`kind: chat | embedding`): a collection routes one kind of request, and an
embedding model needs an upstream with an embeddings API."""

from __future__ import annotations

from routectl.compiler.loader import Document
from routectl.compiler.validate.index import Index
from routectl.compiler.validate.names import split_member_model
from routectl.compiler.validate.shapes import as_dict, as_list, as_str
from routectl.errors import Diagnostic
from routectl.table import MODEL_KINDS

__all__ = ["check_collection_kinds", "check_embedding_connections"]

_DEFAULT = "chat"
_NO_EMBEDDINGS = frozenset({"anthropic"})  # dialects whose API has no embeddings endpoint


def _kind(index: Index, model_id: str) -> str | None:
    spec = index.models.get(model_id)
    if spec is None:
        return None  # an unknown model is reported by check_members
    kind = as_dict(spec).get("kind", _DEFAULT)
    return kind if kind in MODEL_KINDS else None  # any other value is a schema error


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def check_collection_kinds(doc: Document, index: Index) -> list[Diagnostic]:
    """Every member of a collection is of its first member's kind: a chat request routed to an
    embedding model (or the reverse) could only fail."""
    out: list[Diagnostic] = []
    for name, raw in index.collections.items():
        first: tuple[str, str] | None = None
        for i, member in enumerate(as_list(as_dict(raw).get("members"))):
            text = as_str(as_dict(member).get("model"))
            if text is None:
                continue
            model_id = split_member_model(text)[1]
            kind = _kind(index, model_id)
            if kind is None:
                continue
            if first is None:
                first = (model_id, kind)
            elif kind != first[1]:
                out.append(
                    doc.diagnostic(
                        ("collections", name, "members", i, "model"),
                        f"'{model_id}' is {_a(kind)} model, but this collection's first member "
                        f"'{first[0]}' is {_a(first[1])} model: a collection routes one kind of "
                        "request (chat or embeddings)",
                    )
                )
    return out


def check_embedding_connections(doc: Document, index: Index) -> list[Diagnostic]:
    """No connection of a dialect without an embeddings API lists an embedding model."""
    out: list[Diagnostic] = []
    for c, raw in enumerate(index.connections):
        conn = as_dict(raw)
        provider = as_str(conn.get("provider"))
        api = as_str(as_dict(index.providers.get(provider)).get("api")) if provider else None
        if api not in _NO_EMBEDDINGS:
            continue
        for m, model_id in enumerate(as_list(conn.get("models"))):
            if isinstance(model_id, str) and _kind(index, model_id) == "embedding":
                out.append(
                    doc.diagnostic(
                        ("connections", c, "models", m),
                        f"'{model_id}' is an embedding model, and the {api} API has no "
                        "embeddings endpoint",
                    )
                )
    return out
