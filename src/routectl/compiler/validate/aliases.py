"""Aliases: only system collections have them, each names one collection, none hides another."""

from __future__ import annotations

from routectl.compiler.loader import Document
from routectl.compiler.validate.index import Index
from routectl.compiler.validate.shapes import as_dict, as_str
from routectl.errors import Diagnostic

__all__ = ["check_alias_collisions", "check_alias_scope", "check_auto_aliases"]


def check_alias_scope(doc: Document, index: Index) -> list[Diagnostic]:
    """Only system collections may have aliases."""
    out: list[Diagnostic] = []
    for name in index.aliases_of:
        scope = as_str(as_dict(index.collections[name]).get("scope"))
        if scope in ("organization", "user"):
            out.append(
                doc.diagnostic(
                    ("collections", name, "aliases"),
                    f"only system collections may have aliases; this one is {scope}-scoped",
                )
            )
    return out


def check_alias_collisions(doc: Document, index: Index) -> list[Diagnostic]:
    """An alias is no other collection's name, and no alias is claimed twice."""
    out: list[Diagnostic] = []
    for name, aliases in index.aliases_of.items():
        for i, alias in enumerate(aliases):
            if not isinstance(alias, str):
                continue
            path = ("collections", name, "aliases", i)
            if alias != name and alias in index.collections:
                out.append(
                    doc.diagnostic(path, f"alias '{alias}' is the name of another collection")
                )
                continue
            claim = index.alias_claims[alias]
            if claim != (name, i):
                where = (
                    "this collection"
                    if claim.collection == name
                    else f"collection '{claim.collection}'"
                )
                out.append(doc.diagnostic(path, f"alias '{alias}' is already used by {where}"))
    return out


def check_auto_aliases(doc: Document, index: Index) -> list[Diagnostic]:
    """An alias `auto(x)` must not take `auto(x)` away from the collection `auto-x` names."""
    out: list[Diagnostic] = []
    for alias, claim in index.alias_claims.items():
        if not (alias.startswith("auto(") and alias.endswith(")")):
            continue
        short = "auto-" + alias[5:-1]
        if short in index.collections:
            target: str | None = short
        else:
            short_claim = index.alias_claims.get(short)
            target = short_claim.collection if short_claim is not None else None
        if target is None or target == claim.collection:
            continue
        out.append(
            doc.diagnostic(
                ("collections", claim.collection, "aliases", claim.position),
                f"alias '{alias}' would take '{alias}' away from collection '{target}' "
                f"('auto(x)' names the collection or alias 'auto-x')",
            )
        )
    return out
