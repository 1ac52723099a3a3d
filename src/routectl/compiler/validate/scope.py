"""A collection's scope and owner agree: system has none, organization and user name one."""

from __future__ import annotations

from typing import Any

from routectl.compiler.loader import Document, PathKey
from routectl.compiler.validate.index import Index
from routectl.compiler.validate.shapes import as_dict, as_str
from routectl.compiler.validate.wording import article, hint_for
from routectl.errors import Diagnostic

__all__ = ["check_collection_scopes"]


def check_collection_scopes(doc: Document, index: Index) -> list[Diagnostic]:
    """Every collection's owner fits its scope."""
    out: list[Diagnostic] = []
    for name, raw in index.collections.items():
        out += _scope_problems(doc, index, ("collections", name), as_dict(raw))
    return out


def _scope_problems(
    doc: Document, index: Index, base: PathKey, coll: dict[str, Any]
) -> list[Diagnostic]:
    scope = as_str(coll.get("scope"))
    owner = as_str(coll.get("owner"))
    if scope == "system":
        if owner is not None:
            return [
                doc.diagnostic(
                    (*base, "owner"),
                    "a system collection has no owner; remove 'owner' or change 'scope'",
                )
            ]
        return []
    if scope not in ("organization", "user"):
        return []
    if scope == "organization":
        wanted, known = "organization", index.orgs
    else:
        wanted, known = "user", index.users
    if owner is None:
        if "owner" in coll:
            return []  # present but malformed: the schema reports it
        return [
            doc.diagnostic(
                base,
                f"{article(scope)} {scope}-scoped collection needs an 'owner' ({wanted} handle)",
                key=True,
            )
        ]
    if owner in known:
        return []
    if owner in index.users or owner in index.orgs:
        actual = "a user" if owner in index.users else "an organization"
        return [
            doc.diagnostic(
                (*base, "owner"),
                f"'{owner}' is {actual}, but {article(scope)} {scope}-scoped collection must be "
                f"owned by {article(wanted)} {wanted}",
            )
        ]
    return [
        doc.diagnostic(
            (*base, "owner"), f"unknown {wanted} '{owner}'{hint_for(owner, known, wanted + 's')}"
        )
    ]
