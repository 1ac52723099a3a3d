"""A base URL names a server, never a key."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from routectl.compiler.loader import Document, PathKey
from routectl.compiler.validate.index import Index
from routectl.compiler.validate.shapes import as_dict
from routectl.errors import Diagnostic

__all__ = ["check_base_urls"]


def check_base_urls(doc: Document, index: Index) -> list[Diagnostic]:
    """No user:password@, no ?key=, no #fragment in a provider's or a connection's base_url.

    The message does not repeat the URL: it may hold a secret, and diagnostics end up in CI logs.
    """
    places: list[tuple[PathKey, Any]] = [
        (("providers", name, "base_url"), as_dict(p).get("base_url"))
        for name, p in index.providers.items()
    ]
    places += [
        (("connections", i, "base_url"), as_dict(c).get("base_url"))
        for i, c in enumerate(index.connections)
    ]
    out: list[Diagnostic] = []
    for path, url in places:
        if not isinstance(url, str):
            continue
        try:
            parts = urlsplit(url)
        except ValueError:
            continue  # not a URL at all: the schema's pattern reports it
        what = [
            label
            for label, present in (
                ("a user or password", parts.username is not None or parts.password is not None),
                ("a query string", bool(parts.query) or url.endswith("?")),
                ("a fragment", bool(parts.fragment) or url.endswith("#")),
            )
            if present
        ]
        if what:
            out.append(
                doc.diagnostic(
                    path,
                    f"base_url must not carry {' or '.join(what)}: keys go in "
                    "credentials.api_key_env, and this URL is written to generated/ and the database",
                )
            )
    return out
