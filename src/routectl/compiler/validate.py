"""Meaning checks beyond the schema: references, duplicates, collisions, scope and serving rules.

They read the plain data defensively (any part may be malformed, the schema reports that), so a
file with schema errors still gets every meaning error reported in the same run.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from routectl.compiler.loader import Document, PathKey
from routectl.errors import Diagnostic

__all__ = ["RESERVED_HANDLES", "RESERVED_NAMES", "check_meaning", "split_member_model"]

# `collection/NAME` and `auto(x)` are resolved before any provider, collection or handle name;
# a handle may not be `platform` either, the owner of shared connections.
RESERVED_NAMES = frozenset({"collection", "auto"})
RESERVED_HANDLES = RESERVED_NAMES | {"platform"}


def split_member_model(text: str) -> tuple[str | None, str]:
    """("handle" or None, "provider/model") of a member's `model` string."""
    parts = text.split("/", 2)
    if len(parts) == 3:
        return parts[0], f"{parts[1]}/{parts[2]}"
    return None, text


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _hint(name: str, known: Iterable[str], what: str) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    if close:
        return f" (did you mean '{close[0]}'?)"
    known_list = sorted(known)
    if not known_list:
        return f" (no {what} are defined)"
    if len(known_list) <= 8:
        return f" (known {what}: {', '.join(known_list)})"
    return ""


@dataclass
class _Index:
    """Names defined in the file, collected once so every check is a set lookup."""

    users: dict[str, Any]
    orgs: dict[str, Any]
    providers: dict[str, Any]
    models: dict[str, Any]
    # model id -> owners of connections serving it
    serving: dict[str, set[str]]
    # user handle -> the organizations listing it as a member
    orgs_of: dict[str, set[str]]


def _memberships(orgs: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for handle, org in orgs.items():
        for member in _list(_dict(org).get("members")):
            if isinstance(member, str):
                out.setdefault(member, set()).add(handle)
    return out


def check_meaning(doc: Document) -> list[Diagnostic]:
    """Every meaning error of the document, as diagnostics."""
    data = _dict(doc.data)
    orgs = _dict(data.get("organizations"))
    index = _Index(
        users=_dict(data.get("users")),
        orgs=orgs,
        providers=_dict(data.get("providers")),
        models=_dict(data.get("models")),
        serving={},
        orgs_of=_memberships(orgs),
    )
    out: list[Diagnostic] = []
    if _has_bad_value(data):  # a quick scan first: paths are built only when one is found
        out += _check_values(doc, data, ())
    out += _check_handles(doc, index)
    out += _check_reserved_names(doc, index, _dict(data.get("collections")))
    out += _check_base_urls(doc, index, _list(data.get("connections")))
    out += _check_models(doc, index)
    out += _check_connections(doc, index, _list(data.get("connections")))
    out += _check_collections(doc, index, _dict(data.get("collections")))
    return out


_INT64 = (-(2**63), 2**63 - 1)


def _leaf_problem(value: Any) -> str | None:
    """Why one value cannot survive the table's JSON and PostgreSQL, or None."""
    kind = type(value)
    if kind is str:
        if "\x00" in value:
            return "must not contain a NUL character (\\0): PostgreSQL text cannot hold it"
    elif kind is float:
        if not math.isfinite(value):
            return f"must be a finite number; got {value}"
    elif kind is int and not _INT64[0] <= value <= _INT64[1]:
        return "integer out of range: it must fit in 64 bits"
    return None


def _has_bad_value(data: Any) -> bool:
    stack = [data]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is dict:
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
        elif _leaf_problem(value) is not None:
            return True
    return False


def _check_values(doc: Document, value: Any, path: PathKey) -> list[Diagnostic]:
    """Every value that cannot survive the table's JSON and PostgreSQL (see _leaf_problem)."""
    if isinstance(value, dict):
        return [d for k, v in value.items() for d in _check_values(doc, v, (*path, k))]
    if isinstance(value, list):
        return [d for i, v in enumerate(value) for d in _check_values(doc, v, (*path, i))]
    problem = _leaf_problem(value)
    return [] if problem is None else [doc.diagnostic(path, problem)]


def _check_base_urls(doc: Document, ix: _Index, connections: list[Any]) -> list[Diagnostic]:
    """A base URL names a server, never a key: no user:password@, no ?key=, no #fragment.

    The message does not repeat the URL: it may hold a secret, and diagnostics end up in CI logs.
    """
    places: list[tuple[PathKey, Any]] = [
        (("providers", name, "base_url"), _dict(p).get("base_url"))
        for name, p in ix.providers.items()
    ]
    places += [
        (("connections", i, "base_url"), _dict(c).get("base_url"))
        for i, c in enumerate(connections)
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


def _check_reserved_names(
    doc: Document, ix: _Index, collections: dict[str, Any]
) -> list[Diagnostic]:
    """`collection/...` and `auto(...)` are names the runtime resolves first."""
    out: list[Diagnostic] = []
    for section, names, kind in (
        ("providers", ix.providers, "provider"),
        ("collections", collections, "collection"),
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


def _check_handles(doc: Document, ix: _Index) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for section, handles, kind in (
        ("users", ix.users, "user"),
        ("organizations", ix.orgs, "organization"),
    ):
        for handle in handles:
            path: PathKey = (section, handle)
            if handle in RESERVED_HANDLES:
                out.append(
                    doc.diagnostic(
                        path,
                        f"'{handle}' is a reserved word and cannot be a {kind} handle",
                        key=True,
                    )
                )
            if handle in ix.providers:
                out.append(
                    doc.diagnostic(
                        path,
                        f"{kind} handle '{handle}' equals a provider name; '{handle}/...' model names would be ambiguous",
                        key=True,
                    )
                )
    for handle in ix.orgs:
        if handle in ix.users:
            out.append(
                doc.diagnostic(
                    ("organizations", handle),
                    f"'{handle}' is both a user and an organization handle",
                    key=True,
                )
            )
    for handle, org in ix.orgs.items():
        seen: set[str] = set()
        for i, member in enumerate(_list(_dict(org).get("members"))):
            if not isinstance(member, str):
                continue
            path = ("organizations", handle, "members", i)
            if member not in ix.users:
                out.append(
                    doc.diagnostic(
                        path, f"member '{member}' is not a user{_hint(member, ix.users, 'users')}"
                    )
                )
            elif member in seen:
                out.append(doc.diagnostic(path, f"member '{member}' is listed twice"))
            seen.add(member)
    owners: dict[str, str] = {}
    for handle, user in ix.users.items():
        for i, digest in enumerate(_list(_dict(user).get("api_keys"))):
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


def _check_models(doc: Document, ix: _Index) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for model_id in ix.models:
        provider, sep, _ = model_id.partition("/")
        if sep and provider not in ix.providers:
            out.append(
                doc.diagnostic(
                    ("models", model_id),
                    f"unknown provider '{provider}'{_hint(provider, ix.providers, 'providers')}",
                    key=True,
                )
            )
    return out


def _check_connections(doc: Document, ix: _Index, connections: list[Any]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    first_index: dict[str, int] = {}
    for i, raw in enumerate(connections):
        conn = _dict(raw)
        base: PathKey = ("connections", i)
        conn_id = _str(conn.get("id"))
        if conn_id is not None:
            if conn_id in first_index:
                first_line = doc.mark(("connections", first_index[conn_id], "id"))[0]
                out.append(
                    doc.diagnostic(
                        (*base, "id"),
                        f"duplicate connection id '{conn_id}' (first used at line {first_line})",
                    )
                )
            else:
                first_index[conn_id] = i
        owner = _str(conn.get("owner"))
        if (
            owner is not None
            and owner != "platform"
            and owner not in ix.users
            and owner not in ix.orgs
        ):
            hint = _hint(owner, [*ix.users, *ix.orgs, "platform"], "owners")
            out.append(
                doc.diagnostic(
                    (*base, "owner"),
                    f"unknown owner '{owner}': not a user, an organization or 'platform'{hint}",
                )
            )
        provider_name = _str(conn.get("provider"))
        provider = None
        if provider_name is not None:
            if provider_name in ix.providers:
                provider = _dict(ix.providers[provider_name])
            else:
                out.append(
                    doc.diagnostic(
                        (*base, "provider"),
                        f"unknown provider '{provider_name}'{_hint(provider_name, ix.providers, 'providers')}",
                    )
                )
        listed: set[str] = set()
        for j, model_id in enumerate(_list(conn.get("models"))):
            if not isinstance(model_id, str):
                continue
            path = (*base, "models", j)
            if model_id in listed:
                out.append(doc.diagnostic(path, f"model '{model_id}' is listed twice"))
                continue
            listed.add(model_id)
            if model_id not in ix.models:
                out.append(
                    doc.diagnostic(
                        path, f"unknown model '{model_id}'{_hint(model_id, ix.models, 'models')}"
                    )
                )
                continue
            model_provider = model_id.partition("/")[0]
            if provider is not None and model_provider != provider_name:
                out.append(
                    doc.diagnostic(
                        path,
                        f"model '{model_id}' belongs to provider '{model_provider}', "
                        f"not to this connection's provider '{provider_name}'",
                    )
                )
                continue
            if owner is not None:
                ix.serving.setdefault(model_id, set()).add(owner)
        for model_id in _dict(conn.get("upstream_names")):
            if model_id not in listed:
                out.append(
                    doc.diagnostic(
                        (*base, "upstream_names", model_id),
                        f"upstream name given for '{model_id}', which this connection does not list in 'models'",
                        key=True,
                    )
                )
        if provider is not None and provider.get("api") != "echo":
            # a `credentials` mapping without api_key_env is the schema's to report
            if "credentials" not in conn:
                out.append(
                    doc.diagnostic(
                        base,
                        f"a connection to provider '{provider_name}' needs credentials: "
                        "{api_key_env: NAME_OF_THE_ENV_VAR_HOLDING_THE_KEY}",
                    )
                )
            # anthropic defaults to the official API (https://api.anthropic.com/v1); an
            # "openai" provider is any compatible server, so it must say which
            if (
                conn.get("base_url") is None
                and provider.get("base_url") is None
                and provider.get("api") != "anthropic"
            ):
                out.append(
                    doc.diagnostic(
                        base,
                        f"no base_url: set one on this connection or on provider '{provider_name}'",
                    )
                )
    return out


def _check_collections(doc: Document, ix: _Index, collections: dict[str, Any]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    alias_owner: dict[str, str] = {}
    for name, raw in collections.items():
        coll = _dict(raw)
        base: PathKey = ("collections", name)
        scope = _str(coll.get("scope"))
        owner = _str(coll.get("owner"))
        out += _check_scope(doc, ix, base, scope, owner)
        aliases = _list(coll.get("aliases"))
        if aliases and scope in ("organization", "user"):
            out.append(
                doc.diagnostic(
                    (*base, "aliases"),
                    f"only system collections may have aliases; this one is {scope}-scoped",
                )
            )
        for i, alias in enumerate(aliases):
            if not isinstance(alias, str):
                continue
            path = (*base, "aliases", i)
            if alias != name and alias in collections:
                out.append(
                    doc.diagnostic(path, f"alias '{alias}' is the name of another collection")
                )
            elif alias in alias_owner:
                other = alias_owner[alias]
                where = "this collection" if other == name else f"collection '{other}'"
                out.append(doc.diagnostic(path, f"alias '{alias}' is already used by {where}"))
            else:
                alias_owner[alias] = name
        out += _check_members(doc, ix, base, scope, owner, _list(coll.get("members")))
    out += _check_auto_aliases(doc, collections, alias_owner)
    return out


def _check_auto_aliases(
    doc: Document, collections: dict[str, Any], alias_owner: dict[str, str]
) -> list[Diagnostic]:
    """An alias `auto(x)` must not take `auto(x)` away from the collection `auto-x` names."""
    out: list[Diagnostic] = []
    for alias, name in alias_owner.items():
        if not (alias.startswith("auto(") and alias.endswith(")")):
            continue
        short = "auto-" + alias[5:-1]
        target = short if short in collections else alias_owner.get(short)
        if target is None or target == name:
            continue
        index = _list(_dict(collections.get(name)).get("aliases")).index(alias)
        out.append(
            doc.diagnostic(
                ("collections", name, "aliases", index),
                f"alias '{alias}' would take '{alias}' away from collection '{target}' "
                f"('auto(x)' names the collection or alias 'auto-x')",
            )
        )
    return out


def _check_scope(
    doc: Document, ix: _Index, base: PathKey, scope: str | None, owner: str | None
) -> list[Diagnostic]:
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
    wanted, known = ("organization", ix.orgs) if scope == "organization" else ("user", ix.users)
    if owner is None:
        if "owner" in _dict(_lookup(doc.data, base)):
            return []  # present but malformed: the schema reports it
        return [
            doc.diagnostic(
                base,
                f"{_a(scope)} {scope}-scoped collection needs an 'owner' ({wanted} handle)",
                key=True,
            )
        ]
    if owner in known:
        return []
    if owner in ix.users or owner in ix.orgs:
        actual = "a user" if owner in ix.users else "an organization"
        return [
            doc.diagnostic(
                (*base, "owner"),
                f"'{owner}' is {actual}, but {_a(scope)} {scope}-scoped collection must be "
                f"owned by {_a(wanted)} {wanted}",
            )
        ]
    return [
        doc.diagnostic(
            (*base, "owner"), f"unknown {wanted} '{owner}'{_hint(owner, known, wanted + 's')}"
        )
    ]


def _check_members(
    doc: Document,
    ix: _Index,
    base: PathKey,
    scope: str | None,
    owner: str | None,
    members: list[Any],
) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen: dict[str, int] = {}
    # who may use a pinned handle's connections through this collection; and whose connections
    # serve its callers at all (None: not known, or everyone's for some caller)
    allowed_pins: set[str] | None = None
    usable_owners: set[str] | None = None
    if scope == "user" and owner in ix.users:
        allowed_pins = {owner} | ix.orgs_of.get(owner, set())
        usable_owners = allowed_pins | {"platform"}
    elif scope == "organization" and owner in ix.orgs:
        allowed_pins = {owner}
        members_of_org = {
            m
            for m in _list(_dict(ix.orgs[owner]).get("members"))
            if isinstance(m, str) and m in ix.users
        }
        usable_owners = {owner, "platform"} | members_of_org
        for member in members_of_org:
            usable_owners |= ix.orgs_of.get(member, set())
    elif scope == "system":
        # every user calls it: an organization's pin serves its members (the others skip that
        # member); a user's pin would serve one caller and be "no connection" for all the rest
        allowed_pins = set(ix.orgs)
    for i, raw in enumerate(members):
        text = _str(_dict(raw).get("model"))
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
        if handle is not None and handle not in ix.users and handle not in ix.orgs:
            hint = _hint(handle, [*ix.users, *ix.orgs], "handles")
            out.append(
                doc.diagnostic(
                    path, f"unknown handle '{handle}': not a user or an organization{hint}"
                )
            )
            continue
        if model_id not in ix.models:
            out.append(
                doc.diagnostic(
                    path, f"unknown model '{model_id}'{_hint(model_id, ix.models, 'models')}"
                )
            )
            continue
        owners = ix.serving.get(model_id, set())
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
            and all(o == "platform" or o in ix.users or o in ix.orgs for o in owners)
        ):  # (an unknown owner is reported at its connection)
            out.append(
                doc.diagnostic(
                    path,
                    f"the users of this {scope}-scoped collection may use no connection serving "
                    f"'{model_id}' (served by: {', '.join(sorted(owners))})",
                )
            )
    return out


def _a(word: str) -> str:
    return "an" if word == "organization" else "a"


def _lookup(data: Any, path: PathKey) -> Any:
    for part in path:
        if isinstance(part, int):
            data = data[part] if isinstance(data, list) and part < len(data) else None
        else:
            data = data.get(part) if isinstance(data, dict) else None
    return data
