"""What the meaning checks look up, built in one pure pass before any check runs.

Checks read the index and never add to it, so none depends on another having run: which
connections serve a model, for instance, is decided here, not as a side effect of checking them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from routectl.compiler.loader import Document
from routectl.compiler.validate.shapes import as_dict, as_list, as_str

__all__ = ["AliasClaim", "Index", "build_index"]


class AliasClaim(NamedTuple):
    """Where an alias is first claimed: the collection and the position in its `aliases`."""

    collection: str
    position: int


class Index(NamedTuple):
    """The document's sections (malformed ones empty) and what is derived from them.

    (A NamedTuple rather than a dataclass: immutable all the same, and a compile does not pay
    half a millisecond for the dataclass decorator.)
    """

    users: Mapping[str, Any]
    orgs: Mapping[str, Any]
    providers: Mapping[str, Any]
    models: Mapping[str, Any]
    connections: Sequence[Any]
    collections: Mapping[str, Any]
    # user handle -> the organizations listing it as a member
    orgs_of: Mapping[str, frozenset[str]]
    # model id -> owners of the connections that serve it: the model is defined and belongs to
    # the connection's provider (when that provider is known)
    serving: Mapping[str, frozenset[str]]
    # collection name -> its `aliases` list, for the collections that have one (most have none)
    aliases_of: Mapping[str, Sequence[Any]]
    # alias -> its first claim; an alias that is another collection's name claims nothing
    alias_claims: Mapping[str, AliasClaim]


def build_index(doc: Document) -> Index:
    """The index of `doc`, read defensively (any part may be malformed)."""
    data = as_dict(doc.data)
    orgs = as_dict(data.get("organizations"))
    providers = as_dict(data.get("providers"))
    models = as_dict(data.get("models"))
    connections = as_list(data.get("connections"))
    collections = as_dict(data.get("collections"))
    aliases_of = _aliases_of(collections)
    return Index(
        users=as_dict(data.get("users")),
        orgs=orgs,
        providers=providers,
        models=models,
        connections=connections,
        collections=collections,
        orgs_of=_memberships(orgs),
        serving=_serving(connections, providers, models),
        aliases_of=aliases_of,
        alias_claims=_alias_claims(collections, aliases_of),
    )


def _memberships(orgs: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for handle, org in orgs.items():
        for member in as_list(as_dict(org).get("members")):
            if isinstance(member, str):
                out.setdefault(member, set()).add(handle)
    return {member: frozenset(handles) for member, handles in out.items()}


def _serving(
    connections: Sequence[Any], providers: Mapping[str, Any], models: Mapping[str, Any]
) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for raw in connections:
        conn = as_dict(raw)
        owner = as_str(conn.get("owner"))
        if owner is None:
            continue
        provider = as_str(conn.get("provider"))
        # an unknown provider is reported at the connection; its models still count as served
        # so that each collection member naming them is not reported a second time
        known_provider = provider is not None and provider in providers
        for model_id in as_list(conn.get("models")):
            if not isinstance(model_id, str) or model_id not in models:
                continue
            if known_provider and model_id.partition("/")[0] != provider:
                continue
            out.setdefault(model_id, set()).add(owner)
    return {model_id: frozenset(owners) for model_id, owners in out.items()}


def _aliases_of(collections: Mapping[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for name, coll in collections.items():
        aliases = as_list(as_dict(coll).get("aliases"))
        if aliases:
            out[name] = aliases
    return out


def _alias_claims(
    collections: Mapping[str, Any], aliases_of: Mapping[str, Sequence[Any]]
) -> dict[str, AliasClaim]:
    out: dict[str, AliasClaim] = {}
    for name, aliases in aliases_of.items():
        for position, alias in enumerate(aliases):
            if not isinstance(alias, str) or alias in out:
                continue
            if alias != name and alias in collections:
                continue
            out[alias] = AliasClaim(name, position)
    return out
