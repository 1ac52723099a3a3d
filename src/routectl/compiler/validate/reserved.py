"""Names and handles that the runtime resolves as something else first."""

from __future__ import annotations

from routectl.compiler.loader import Document
from routectl.compiler.validate.index import Index
from routectl.compiler.validate.names import RESERVED_HANDLES, RESERVED_NAMES
from routectl.errors import Diagnostic

__all__ = ["check_reserved_words"]


def check_reserved_words(doc: Document, index: Index) -> list[Diagnostic]:
    """No provider, collection, user or organization is named with a reserved word."""
    out: list[Diagnostic] = []
    for section, names, what, reserved in (
        ("users", index.users, "user handle", RESERVED_HANDLES),
        ("organizations", index.orgs, "organization handle", RESERVED_HANDLES),
        ("providers", index.providers, "provider name", RESERVED_NAMES),
        ("collections", index.collections, "collection name", RESERVED_NAMES),
    ):
        for name in names:
            if name in reserved:
                out.append(
                    doc.diagnostic(
                        (section, name),
                        f"'{name}' is a reserved word and cannot be a {what}",
                        key=True,
                    )
                )
    return out
