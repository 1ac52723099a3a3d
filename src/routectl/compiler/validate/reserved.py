"""Provider and collection names that the runtime resolves as something else first."""

from __future__ import annotations

from routectl.compiler.loader import Document
from routectl.compiler.validate.index import Index
from routectl.compiler.validate.names import RESERVED_NAMES
from routectl.errors import Diagnostic

__all__ = ["check_reserved_names"]


def check_reserved_names(doc: Document, index: Index) -> list[Diagnostic]:
    """`collection/...` and `auto(...)` are names the runtime resolves first."""
    out: list[Diagnostic] = []
    for section, names, kind in (
        ("providers", index.providers, "provider"),
        ("collections", index.collections, "collection"),
    ):
        for name in names:
            if name in RESERVED_NAMES:
                out.append(
                    doc.diagnostic(
                        (section, name),
                        f"'{name}' is a reserved word and cannot be a {kind} name",
                        key=True,
                    )
                )
    return out
