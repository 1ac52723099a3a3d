"""User and organization handles: no clashes, an organization's members, the users' keys."""

from __future__ import annotations

from routectl.compiler.loader import Document
from routectl.compiler.validate.index import Index
from routectl.compiler.validate.shapes import as_dict, as_list
from routectl.compiler.validate.wording import hint_for
from routectl.errors import Diagnostic

__all__ = ["check_api_keys", "check_handle_clashes", "check_org_members"]


def check_handle_clashes(doc: Document, index: Index) -> list[Diagnostic]:
    """A handle is no provider name, and not both a user and an organization."""
    out: list[Diagnostic] = []
    for section, handles, kind in (
        ("users", index.users, "user"),
        ("organizations", index.orgs, "organization"),
    ):
        for handle in handles:
            if handle in index.providers:
                out.append(
                    doc.diagnostic(
                        (section, handle),
                        f"{kind} handle '{handle}' equals a provider name; '{handle}/...' model names would be ambiguous",
                        key=True,
                    )
                )
    for handle in index.orgs:
        if handle in index.users:
            out.append(
                doc.diagnostic(
                    ("organizations", handle),
                    f"'{handle}' is both a user and an organization handle",
                    key=True,
                )
            )
    return out


def check_org_members(doc: Document, index: Index) -> list[Diagnostic]:
    """An organization's members are users, each listed once."""
    out: list[Diagnostic] = []
    for handle, org in index.orgs.items():
        seen: set[str] = set()
        for i, member in enumerate(as_list(as_dict(org).get("members"))):
            if not isinstance(member, str):
                continue
            path = ("organizations", handle, "members", i)
            if member not in index.users:
                hint = hint_for(member, index.users, "users")
                out.append(doc.diagnostic(path, f"member '{member}' is not a user{hint}"))
            elif member in seen:
                out.append(doc.diagnostic(path, f"member '{member}' is listed twice"))
            seen.add(member)
    return out


def check_api_keys(doc: Document, index: Index) -> list[Diagnostic]:
    """A key digest names one caller: it is listed once in the whole file."""
    out: list[Diagnostic] = []
    owners: dict[str, str] = {}
    for handle, user in index.users.items():
        for i, digest in enumerate(as_list(as_dict(user).get("api_keys"))):
            if not isinstance(digest, str):
                continue
            if digest in owners:
                other = owners[digest]
                whose = "this user" if other == handle else f"user '{other}'"
                out.append(
                    doc.diagnostic(
                        ("users", handle, "api_keys", i),
                        f"this key digest is already listed for {whose}",
                    )
                )
            else:
                owners[digest] = handle
    return out
