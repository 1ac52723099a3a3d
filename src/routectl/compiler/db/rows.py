"""The relational projection of a RoutingTable: one Row per database row, keyed by natural keys.

Seed and migrations are both rendered from these rows, so the two paths cannot disagree about
what a table looks like in PostgreSQL. Row ids are UUIDv5 of the natural key under a fixed
namespace: the same config gives the same ids on every machine, and a renamed thing is a new row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from hashlib import sha1
from typing import Any

from routectl.compiler.db.literals import Json, SqlValue, sql_literals
from routectl.table import Collection, RoutingTable, defaults_to_dict

__all__ = [
    "AUTO_FREE_COLLECTION",
    "AUTO_FREE_PROPERTY",
    "NAMESPACE",
    "SCHEMA_PROPERTY",
    "SCHEMA_STEPS",
    "SCHEMA_VERSION",
    "TABLES",
    "Json",
    "Row",
    "SqlValue",
    "TableSpec",
    "auto_free_models",
    "member_keys",
    "row_id",
    "table_rows",
]

# Fixed forever: changing it would give every row of every deployed database a new id.
NAMESPACE = uuid.UUID("3b5e4c1a-8f0d-5a52-9d7e-6c1f2a4b9e10")
# The version of the schema compile writes. Version 1 is schema.sql.j2; each later version N adds
# templates/SCHEMA_STEPS[N] (DDL only, idempotent), which the full schema includes and the
# migration that brings an older chain to N carries (compare sees `routing.schema_version` move).
SCHEMA_VERSION = 2
SCHEMA_STEPS: dict[int, str] = {2: "schema_v2.sql.j2"}  # version -> its DDL template
SCHEMA_PROPERTY = "routing.schema_version"
AUTO_FREE_COLLECTION = "auto-free"
AUTO_FREE_PROPERTY = "routing.auto_free_models"


@dataclass(frozen=True, slots=True)
class Row:
    """One database row: its natural key (for people), its id, and every managed column."""

    key: str
    id: uuid.UUID
    values: tuple[tuple[str, SqlValue], ...]
    # the SQL literals of `values`, comma separated: rendered once per row, then shared by the
    # seed, the migration and compare (two rows are equal in the database iff these texts are)
    values_sql: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values_sql", sql_literals([v for _, v in self.values]))

    def get(self, column: str) -> SqlValue:
        """The value of one column."""
        for name, value in self.values:
            if name == column:
                return value
        raise KeyError(column)


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A generated table: its managed columns (besides id and timestamps), in DDL order."""

    name: str
    noun: str
    columns: tuple[str, ...]
    # columns recomputed from other changes (order, normalized weights): not headlines in a slug
    derived: frozenset[str] = frozenset()


# Dependency order: parents first. Upserts walk it forwards, deletes backwards.
TABLES: tuple[TableSpec, ...] = (
    TableSpec("organizations", "organization", ("handle", "display_name")),
    TableSpec("users", "user", ("handle", "display_name")),
    TableSpec("organization_members", "organization_member", ("organization_id", "user_id")),
    TableSpec("providers", "provider", ("name", "api", "base_url")),
    TableSpec(
        "model_categories",
        "model",
        (
            "category_display_id",
            "model_name",
            "provider",
            "provider_id",
            "context_window",
            "max_output_tokens",
            "input_price_per_mtok",
            "output_price_per_mtok",
            "capabilities",
            "trust_level",
            "is_free",
        ),
    ),
    TableSpec(
        "connections",
        "connection",
        (
            "connection_name",
            "owner_kind",
            "owner_handle",
            "organization_id",
            "owner_user_id",
            "provider",
            "provider_id",
            "api",
            "base_url",
            "api_key_env",
            "priority",
            "models",
            "upstream_names",
        ),
    ),
    TableSpec(
        "model_collections",
        "collection",
        (
            "collection_name",
            "display_name",
            "description",
            "scope",
            "routing_strategy",
            "organization_id",
            "owner_user_id",
            "owner_handle",
            "aliases",
            "fallback_on",
            "max_attempts",
            "timeout_ms",
            "is_active",
            "is_system_collection",
            "metadata",
        ),
    ),
    TableSpec(
        "model_collection_members",
        "member",
        (
            "collection_id",
            "model_category_id",
            "member_model",
            "handle",
            "priority",
            "weight",
            "normalized_weight",
            "position",
            "declared_index",
            "tags",
            "is_active",
        ),
        derived=frozenset({"normalized_weight", "position", "declared_index"}),
    ),
    TableSpec(
        "system_properties",
        "system_property",
        ("property_name", "property_value", "description"),
    ),
)


_NAMESPACE_BYTES = NAMESPACE.bytes
# RFC 4122 version 5 and variant bits, set exactly as uuid.UUID(..., version=5) sets them
_V5_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V5_SET = (5 << 76) | (0x8000 << 48)


def row_id(kind: str, natural_key: str) -> uuid.UUID:
    """The deterministic id of a row: UUIDv5 of `kind:natural_key` (uuid.uuid5, inlined).

    One per row, so on the hot path: uuid.uuid5 re-imports sha1 and re-encodes the namespace
    on every call.
    """
    digest = sha1(_NAMESPACE_BYTES + f"{kind}:{natural_key}".encode()).digest()
    return uuid.UUID(int=(int.from_bytes(digest[:16]) & _V5_CLEAR) | _V5_SET)


def _row(spec: TableSpec, key: str, values: dict[str, SqlValue]) -> Row:
    if tuple(values) != spec.columns:
        raise AssertionError(f"{spec.name}: columns {tuple(values)} != {spec.columns}")
    return Row(key=key, id=row_id(spec.noun, key), values=tuple(values.items()))


def _spec(name: str) -> TableSpec:
    return next(s for s in TABLES if s.name == name)


def table_rows(
    table: RoutingTable | None, schema_version: int = SCHEMA_VERSION
) -> dict[str, tuple[Row, ...]]:
    """Every row of every generated table for `table` (None: the empty database), in a stable order.

    `schema_version`: the schema the rows are at (`routing.schema_version`); an older one
    describes a database that a chain written by an earlier routectl left.
    """
    if table is None:
        return {spec.name: () for spec in TABLES}
    return {
        "organizations": tuple(_organizations(table)),
        "users": tuple(_users(table)),
        "organization_members": tuple(_organization_members(table)),
        "providers": tuple(_providers(table)),
        "model_categories": tuple(_models(table)),
        "connections": tuple(_connections(table)),
        "model_collections": tuple(_collections(table)),
        "model_collection_members": tuple(_members(table)),
        "system_properties": tuple(_system_properties(table, schema_version)),
    }


def _organizations(table: RoutingTable) -> Iterator[Row]:
    spec = _spec("organizations")
    for handle in sorted(table.organizations):
        org = table.organizations[handle]
        yield _row(spec, handle, {"handle": handle, "display_name": org.display_name})


def _users(table: RoutingTable) -> Iterator[Row]:
    spec = _spec("users")
    for handle in sorted(table.users):
        user = table.users[handle]
        yield _row(spec, handle, {"handle": handle, "display_name": user.display_name})


def _organization_members(table: RoutingTable) -> Iterator[Row]:
    spec = _spec("organization_members")
    for handle in sorted(table.organizations):
        for user in sorted(set(table.organizations[handle].members)):
            yield _row(
                spec,
                f"{handle}/{user}",
                {
                    "organization_id": row_id("organization", handle),
                    "user_id": row_id("user", user),
                },
            )


def _providers(table: RoutingTable) -> Iterator[Row]:
    spec = _spec("providers")
    for name in sorted(table.providers):
        p = table.providers[name]
        yield _row(spec, name, {"name": name, "api": p.api, "base_url": p.base_url})


def _models(table: RoutingTable) -> Iterator[Row]:
    spec = _spec("model_categories")
    for model_id in sorted(table.models):
        m = table.models[model_id]
        yield _row(
            spec,
            model_id,
            {
                "category_display_id": model_id,
                "model_name": m.name,
                "provider": m.provider,
                "provider_id": row_id("provider", m.provider),
                "context_window": m.context_window,
                "max_output_tokens": m.max_output_tokens,
                "input_price_per_mtok": float(m.input_per_mtok),
                "output_price_per_mtok": float(m.output_per_mtok),
                "capabilities": tuple(m.capabilities),
                "trust_level": m.trust_level,
                "is_free": m.free,
            },
        )


def _owner_ids(kind: str, handle: str | None) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """(organization_id, owner_user_id) of an owner."""
    if handle is None:
        return None, None
    if kind == "organization":
        return row_id("organization", handle), None
    if kind == "user":
        return None, row_id("user", handle)
    return None, None


def _connections(table: RoutingTable) -> Iterator[Row]:
    spec = _spec("connections")
    for conn_id in sorted(table.connections):
        c = table.connections[conn_id]
        org_id, user_id = _owner_ids(c.owner_kind, c.owner)
        yield _row(
            spec,
            conn_id,
            {
                "connection_name": conn_id,
                "owner_kind": c.owner_kind,
                "owner_handle": c.owner,
                "organization_id": org_id,
                "owner_user_id": user_id,
                "provider": c.provider,
                "provider_id": row_id("provider", c.provider),
                "api": c.api,
                "base_url": c.base_url,
                # the variable's NAME only: the secret never leaves the process environment
                "api_key_env": c.api_key_env,
                "priority": c.priority,
                "models": tuple(c.models),
                "upstream_names": Json(dict(sorted(c.upstream_names.items()))),
            },
        )


def _collections(table: RoutingTable) -> Iterator[Row]:
    spec = _spec("model_collections")
    for name in sorted(table.collections):
        c = table.collections[name]
        org_id, user_id = _owner_ids(c.scope, c.owner)
        yield _row(
            spec,
            name,
            {
                "collection_name": name,
                "display_name": c.display_name,
                "description": c.description,
                "scope": c.scope,
                "routing_strategy": c.strategy,
                "organization_id": org_id,
                "owner_user_id": user_id,
                "owner_handle": c.owner,
                "aliases": tuple(c.aliases),
                "fallback_on": tuple(c.fallback_on),
                "max_attempts": c.max_attempts,
                "timeout_ms": c.timeout_ms,
                "is_active": True,
                "is_system_collection": c.scope == "system",
                "metadata": Json(c.metadata),
            },
        )


def member_keys(collection: Collection) -> list[str]:
    """Natural keys of a collection's members, in table order; a repeated model gets `#2`, `#3`."""
    seen: dict[str, int] = {}
    keys = []
    for m in collection.members:
        seen[m.model] = seen.get(m.model, 0) + 1
        suffix = "" if seen[m.model] == 1 else f"#{seen[m.model]}"
        keys.append(f"{collection.name}:{m.model}{suffix}")
    return keys


def _members(table: RoutingTable) -> Iterator[Row]:
    spec = _spec("model_collection_members")
    # members repeat a few models many times: one UUIDv5 per model, not one per member
    model_ids: dict[str, uuid.UUID] = {}
    for name in sorted(table.collections):
        c = table.collections[name]
        collection_id = row_id("collection", name)
        for position, (key, m) in enumerate(zip(member_keys(c), c.members, strict=True)):
            model_id = model_ids.get(m.model_id)
            if model_id is None:
                model_id = model_ids[m.model_id] = row_id("model", m.model_id)
            yield _row(
                spec,
                key,
                {
                    "collection_id": collection_id,
                    "model_category_id": model_id,
                    "member_model": m.model,
                    "handle": m.handle,
                    "priority": m.priority,
                    "weight": float(m.weight),
                    "normalized_weight": float(m.normalized_weight),
                    "position": position,
                    "declared_index": m.declared_index,
                    "tags": tuple(m.tags),
                    "is_active": m.active,
                },
            )


def auto_free_models(table: RoutingTable) -> list[str]:
    """Model ids of the active members of the system collection `auto-free`, in routing order."""
    c = table.collections.get(AUTO_FREE_COLLECTION)
    if c is None or c.scope != "system":
        return []
    return list(dict.fromkeys(m.model_id for m in c.members if m.active))


def _system_properties(table: RoutingTable, schema_version: int) -> Iterator[Row]:
    spec = _spec("system_properties")
    props: dict[str, tuple[Any, str]] = {
        AUTO_FREE_PROPERTY: (
            auto_free_models(table),
            "Model ids of the active members of the system collection auto-free",
        ),
        "routing.defaults": (
            defaults_to_dict(table.defaults),
            "routing.yaml defaults, resolved",
        ),
        SCHEMA_PROPERTY: (schema_version, "Version of the schema routectl generates"),
    }
    for name in sorted(props):
        value, description = props[name]
        yield _row(
            spec,
            name,
            {"property_name": name, "property_value": Json(value), "description": description},
        )
