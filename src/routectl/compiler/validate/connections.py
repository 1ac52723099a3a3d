"""Connections: unique ids, known owners and providers, the models they list, what they need."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from routectl.compiler.loader import Document, PathKey
from routectl.compiler.validate.index import Index
from routectl.compiler.validate.shapes import as_dict, as_list, as_str
from routectl.compiler.validate.wording import hint_for
from routectl.errors import Diagnostic
from routectl.table import Api

__all__ = [
    "check_connection_endpoints",
    "check_connection_ids",
    "check_connection_models",
    "check_connection_owners",
    "check_connection_providers",
    "check_upstream_names",
]

# echo answers locally, so it needs no key; anthropic has an official API to default to, while
# an "openai" provider is any compatible server and must say which
_KEYLESS: frozenset[Api] = frozenset({"echo"})
_DEFAULT_BASE_URL: frozenset[Api] = frozenset({"anthropic"})


def _connections(index: Index) -> Iterator[tuple[int, PathKey, dict[str, Any]]]:
    for i, raw in enumerate(index.connections):
        yield i, ("connections", i), as_dict(raw)


def check_connection_ids(doc: Document, index: Index) -> list[Diagnostic]:
    """Connection ids are unique."""
    out: list[Diagnostic] = []
    first_index: dict[str, int] = {}
    for i, base, conn in _connections(index):
        conn_id = as_str(conn.get("id"))
        if conn_id is None:
            continue
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
    return out


def check_connection_owners(doc: Document, index: Index) -> list[Diagnostic]:
    """A connection's owner is a user, an organization or `platform`."""
    out: list[Diagnostic] = []
    for _, base, conn in _connections(index):
        owner = as_str(conn.get("owner"))
        if (
            owner is not None
            and owner != "platform"
            and owner not in index.users
            and owner not in index.orgs
        ):
            hint = hint_for(owner, [*index.users, *index.orgs, "platform"], "owners")
            out.append(
                doc.diagnostic(
                    (*base, "owner"),
                    f"unknown owner '{owner}': not a user, an organization or 'platform'{hint}",
                )
            )
    return out


def check_connection_providers(doc: Document, index: Index) -> list[Diagnostic]:
    """A connection's provider is defined."""
    out: list[Diagnostic] = []
    for _, base, conn in _connections(index):
        name = as_str(conn.get("provider"))
        if name is not None and name not in index.providers:
            out.append(
                doc.diagnostic(
                    (*base, "provider"),
                    f"unknown provider '{name}'{hint_for(name, index.providers, 'providers')}",
                )
            )
    return out


def check_connection_models(doc: Document, index: Index) -> list[Diagnostic]:
    """Each model a connection lists is defined, listed once, and of the connection's provider."""
    out: list[Diagnostic] = []
    for _, base, conn in _connections(index):
        provider = as_str(conn.get("provider"))
        known_provider = provider is not None and provider in index.providers
        listed: set[str] = set()
        for j, model_id in enumerate(as_list(conn.get("models"))):
            if not isinstance(model_id, str):
                continue
            path = (*base, "models", j)
            if model_id in listed:
                out.append(doc.diagnostic(path, f"model '{model_id}' is listed twice"))
                continue
            listed.add(model_id)
            if model_id not in index.models:
                hint = hint_for(model_id, index.models, "models")
                out.append(doc.diagnostic(path, f"unknown model '{model_id}'{hint}"))
                continue
            model_provider = model_id.partition("/")[0]
            if known_provider and model_provider != provider:
                out.append(
                    doc.diagnostic(
                        path,
                        f"model '{model_id}' belongs to provider '{model_provider}', "
                        f"not to this connection's provider '{provider}'",
                    )
                )
    return out


def check_upstream_names(doc: Document, index: Index) -> list[Diagnostic]:
    """An upstream name renames a model the connection lists."""
    out: list[Diagnostic] = []
    for _, base, conn in _connections(index):
        listed = {m for m in as_list(conn.get("models")) if isinstance(m, str)}
        for model_id in as_dict(conn.get("upstream_names")):
            if model_id not in listed:
                out.append(
                    doc.diagnostic(
                        (*base, "upstream_names", model_id),
                        f"upstream name given for '{model_id}', which this connection does not list in 'models'",
                        key=True,
                    )
                )
    return out


def check_connection_endpoints(doc: Document, index: Index) -> list[Diagnostic]:
    """A connection to a real upstream says where its key is and, unless implied, which server."""
    out: list[Diagnostic] = []
    for _, base, conn in _connections(index):
        name = as_str(conn.get("provider"))
        if name is None or name not in index.providers:
            continue
        provider = as_dict(index.providers[name])
        api = as_str(provider.get("api"))  # (malformed: the schema reports it)
        if api in _KEYLESS:
            continue
        # a `credentials` mapping without api_key_env is the schema's to report
        if "credentials" not in conn:
            out.append(
                doc.diagnostic(
                    base,
                    f"a connection to provider '{name}' needs credentials: "
                    "{api_key_env: NAME_OF_THE_ENV_VAR_HOLDING_THE_KEY}",
                )
            )
        if (
            conn.get("base_url") is None
            and provider.get("base_url") is None
            and api not in _DEFAULT_BASE_URL
        ):
            out.append(
                doc.diagnostic(
                    base, f"no base_url: set one on this connection or on provider '{name}'"
                )
            )
    return out
