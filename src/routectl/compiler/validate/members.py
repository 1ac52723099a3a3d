"""Collection members: each names a defined model that some connection usable here serves."""

from __future__ import annotations

from typing import Any

from routectl.compiler.loader import Document, PathKey
from routectl.compiler.validate.index import Index
from routectl.compiler.validate.names import split_member_model
from routectl.compiler.validate.shapes import as_dict, as_list, as_str
from routectl.compiler.validate.wording import hint_for
from routectl.errors import Diagnostic

__all__ = ["check_members"]

_NO_OWNERS: frozenset[str] = frozenset()


def check_members(doc: Document, index: Index) -> list[Diagnostic]:
    """Every member of every collection is unique, known, served, and usable by its callers."""
    out: list[Diagnostic] = []
    for name, raw in index.collections.items():
        out += _member_problems(doc, index, ("collections", name), as_dict(raw))
    return out


def _who_may_use(
    index: Index, scope: str | None, owner: str | None
) -> tuple[set[str] | None, set[str] | None]:
    """(whose connections a member may pin, whose connections serve the collection's callers).

    None: not known (scope or owner is wrong, and reported elsewhere), or everyone's for some caller.
    """
    if scope == "system":
        # every user calls it: an organization's pin serves its members (the others skip that
        # member); a user's pin would serve one caller and be "no connection" for all the rest
        return set(index.orgs), None
    if owner is None:
        return None, None
    if scope == "user" and owner in index.users:
        allowed_pins = {owner} | index.orgs_of.get(owner, _NO_OWNERS)
        return allowed_pins, allowed_pins | {"platform"}
    if scope == "organization" and owner in index.orgs:
        members_of_org = {
            m
            for m in as_list(as_dict(index.orgs[owner]).get("members"))
            if isinstance(m, str) and m in index.users
        }
        usable_owners = {owner, "platform"} | members_of_org
        for member in members_of_org:
            usable_owners |= index.orgs_of.get(member, _NO_OWNERS)
        return {owner}, usable_owners
    return None, None


def _member_problems(
    doc: Document, index: Index, base: PathKey, coll: dict[str, Any]
) -> list[Diagnostic]:
    scope = as_str(coll.get("scope"))
    owner = as_str(coll.get("owner"))
    allowed_pins, usable_owners = _who_may_use(index, scope, owner)
    out: list[Diagnostic] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(as_list(coll.get("members"))):
        text = as_str(as_dict(raw).get("model"))
        if text is None:
            continue
        path = (*base, "members", i, "model")
        if text in seen:
            out.append(
                doc.diagnostic(path, f"'{text}' is already a member (members[{seen[text]}])")
            )
            continue
        seen[text] = i
        handle, model_id = split_member_model(text)
        if handle is not None and handle not in index.users and handle not in index.orgs:
            hint = hint_for(handle, [*index.users, *index.orgs], "handles")
            out.append(
                doc.diagnostic(
                    path, f"unknown handle '{handle}': not a user or an organization{hint}"
                )
            )
            continue
        if model_id not in index.models:
            hint = hint_for(model_id, index.models, "models")
            out.append(doc.diagnostic(path, f"unknown model '{model_id}'{hint}"))
            continue
        owners = index.serving.get(model_id, _NO_OWNERS)
        if handle is None and not owners:
            out.append(
                doc.diagnostic(
                    path, f"no connection serves '{model_id}'; add it to a connection's models"
                )
            )
        elif handle is not None and handle not in owners:
            out.append(doc.diagnostic(path, f"'{handle}' owns no connection serving '{model_id}'"))
        elif handle is not None and allowed_pins is not None and handle not in allowed_pins:
            if scope == "system":
                message = (
                    f"a system collection serves every user, but only user '{handle}' may use "
                    f"'{handle}'s connections; write '{model_id}' (connections by priority) or "
                    f"move the member to a collection of scope user owned by '{handle}'"
                )
            else:
                message = (
                    f"the users of this {scope}-scoped collection may not use connections "
                    f"owned by '{handle}'; pin one of: {', '.join(sorted(allowed_pins))}"
                )
            out.append(doc.diagnostic(path, message))
        elif (
            handle is None
            and usable_owners is not None
            and not owners & usable_owners
            and all(o == "platform" or o in index.users or o in index.orgs for o in owners)
        ):  # (an unknown owner is reported at its connection)
            out.append(
                doc.diagnostic(
                    path,
                    f"the users of this {scope}-scoped collection may use no connection serving "
                    f"'{model_id}' (served by: {', '.join(sorted(owners))})",
                )
            )
    return out
