"""`limits` name known callers and collections and set something; affinity keys name no secret."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from routectl.compiler.loader import Document
from routectl.compiler.validate.index import Index
from routectl.compiler.validate.shapes import as_dict, as_str
from routectl.compiler.validate.wording import hint_for
from routectl.errors import Diagnostic

__all__ = ["check_affinity_keys", "check_limits"]

_MEASURES = ("requests_per_minute", "tokens_per_minute", "usd_per_day", "usd_per_month")
# request headers that carry the caller's credentials: an affinity key must never be derived
# from them (`user` gives the same grouping without touching a secret)
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "cookie"})


def check_limits(doc: Document, index: Index) -> list[Diagnostic]:
    """Every `limits` entry names a defined user, organization or collection and sets a limit."""
    limits = as_dict(as_dict(doc.data).get("limits"))
    out: list[Diagnostic] = []
    groups: tuple[tuple[str, Mapping[str, Any], str, str], ...] = (
        ("users", index.users, "user", "users"),
        ("organizations", index.orgs, "organization", "organizations"),
        ("collections", index.collections, "collection", "collections"),
    )
    for group, known, what, plural in groups:
        for name, raw in as_dict(limits.get(group)).items():
            path = ("limits", group, name)
            if name not in known:
                hint = hint_for(name, known, plural)
                other = _other_kind(index, group, name)
                out.append(
                    doc.diagnostic(path, f"unknown {what} '{name}'{other or hint}", key=True)
                )
            entry = as_dict(raw)
            if isinstance(raw, dict) and not any(entry.get(m) is not None for m in _MEASURES):
                out.append(
                    doc.diagnostic(
                        path,
                        f"sets no limit; give at least one of {', '.join(_MEASURES)}",
                        key=True,
                    )
                )
    return out


def _other_kind(index: Index, group: str, name: str) -> str:
    """A hint when the name is a handle of the other kind (a user listed as an organization)."""
    if group == "users" and name in index.orgs:
        return f" ('{name}' is an organization: list it under limits.organizations)"
    if group == "organizations" and name in index.users:
        return f" ('{name}' is a user: list it under limits.users)"
    return ""


def check_affinity_keys(doc: Document, index: Index) -> list[Diagnostic]:
    """No collection takes its affinity key from a header that carries credentials."""
    out: list[Diagnostic] = []
    for name, raw in index.collections.items():
        key = as_str(as_dict(as_dict(raw).get("affinity")).get("key"))
        if key is None or not key.startswith("header:"):
            continue
        header = key.partition(":")[2].lower()
        if header in _SECRET_HEADERS:
            out.append(
                doc.diagnostic(
                    ("collections", name, "affinity", "key"),
                    f"'{header}' carries the caller's credentials; use 'user' to keep each "
                    "caller on its own member",
                )
            )
    return out
