"""Warnings: findings in a valid routing.yaml that are probably not what was meant. They never
fail validation or compilation; `routectl validate` and `compile` print them as
`routing.yaml:LINE:COL: warning: PATH: MESSAGE`.

Like the meaning checks, each reads the document and the index (validate/index.py) and returns
its diagnostics, here with `severity="warning"`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from routectl.compiler.loader import Document
from routectl.compiler.validate.index import Index, build_index
from routectl.compiler.validate.names import split_member_model
from routectl.compiler.validate.shapes import as_dict, as_list, as_str
from routectl.errors import Diagnostic

__all__ = ["ADVICE", "advise", "warn_unusable_system_collections"]

_NO_OWNERS: frozenset[str] = frozenset()
_SHOWN = 5  # users named in a warning; the rest are counted


def _usable(index: Index, owners: frozenset[str], member: object) -> bool:
    entry = as_dict(member)
    if entry.get("active") is False:
        return False
    text = as_str(entry.get("model"))
    if text is None:
        return False
    handle, model_id = split_member_model(text)
    serving = index.serving.get(model_id, _NO_OWNERS)
    if handle is not None:
        return handle in owners and handle in serving
    return not serving.isdisjoint(owners)


def warn_unusable_system_collections(doc: Document, index: Index) -> list[Diagnostic]:
    """A system collection serves every user; warn when some user may use none of its members
    (every member pins or is served only by connections that user may not use): that user
    gets 403 access_denied from it."""
    out: list[Diagnostic] = []
    for name, raw in index.collections.items():
        coll = as_dict(raw)
        if coll.get("scope") != "system":
            continue
        members = as_list(coll.get("members"))
        shut_out = [
            user
            for user in index.users
            if not any(
                _usable(
                    index, frozenset({user, "platform"}) | index.orgs_of.get(user, _NO_OWNERS), m
                )
                for m in members
            )
        ]
        if not shut_out:
            continue
        shown = ", ".join(shut_out[:_SHOWN])
        more = f" and {len(shut_out) - _SHOWN} more" if len(shut_out) > _SHOWN else ""
        message = (
            f"users {shown}{more} may use no active member of this system collection (no "
            "connection they may use serves one): they get 403 access_denied from it; add a "
            "platform connection for a member, or make it an organization collection"
        )
        out.append(
            dataclasses.replace(
                doc.diagnostic(("collections", name), message, key=True), severity="warning"
            )
        )
    return out


ADVICE: tuple[Callable[[Document, Index], list[Diagnostic]], ...] = (
    warn_unusable_system_collections,
)


def advise(doc: Document, index: Index | None = None) -> list[Diagnostic]:
    """Every warning of a valid document, sorted."""
    index = index if index is not None else build_index(doc)
    return sorted(d for check in ADVICE for d in check(doc, index))
