"""Migration operations: small frozen values, one class per verb and table, rendered by a macro each."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import ClassVar

from routectl.compiler.db.rows import SqlValue

__all__ = [
    "OP_TYPES",
    "Change",
    "CreateCollectionOp",
    "CreateConnectionOp",
    "CreateMemberOp",
    "CreateModelOp",
    "CreateOp",
    "CreateOrganizationMemberOp",
    "CreateOrganizationOp",
    "CreateProviderOp",
    "CreateSystemPropertyOp",
    "CreateUserOp",
    "DeleteCollectionOp",
    "DeleteConnectionOp",
    "DeleteMemberOp",
    "DeleteModelOp",
    "DeleteOp",
    "DeleteOrganizationMemberOp",
    "DeleteOrganizationOp",
    "DeleteProviderOp",
    "DeleteSystemPropertyOp",
    "DeleteUserOp",
    "Op",
    "UpdateCollectionOp",
    "UpdateConnectionOp",
    "UpdateMemberOp",
    "UpdateModelOp",
    "UpdateOp",
    "UpdateOrganizationOp",
    "UpdateProviderOp",
    "UpdateSystemPropertyOp",
    "UpdateUserOp",
    "UpgradeSchemaOp",
    "macro_name",
]


@dataclass(frozen=True, slots=True)
class Change:
    """One column whose value changes."""

    column: str
    old: SqlValue
    new: SqlValue


@dataclass(frozen=True, slots=True)
class CreateOp:
    """Insert a row that is new in the table."""

    table: ClassVar[str]
    key: str
    id: uuid.UUID
    values: tuple[tuple[str, SqlValue], ...]
    # the row's SQL literals when compare already rendered them (Row.values_sql); else rendered
    # from `values` when the op is
    values_sql: str | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class UpdateOp:
    """Change some columns of a row that both tables have."""

    table: ClassVar[str]
    key: str
    id: uuid.UUID
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class DeleteOp:
    """Delete a row that is gone from the table."""

    table: ClassVar[str]
    key: str
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class UpgradeSchemaOp:
    """Bring the schema from one version to a later one: the DDL of every version in between
    (rows.SCHEMA_STEPS), before any row changes. A database created by an older chain gets it."""

    table: ClassVar[str] = "schema"
    from_version: int
    to_version: int

    @property
    def key(self) -> str:
        return f"schema v{self.from_version} -> v{self.to_version}"


Op = CreateOp | UpdateOp | DeleteOp | UpgradeSchemaOp


# ----------------------------------------------------------------- one class per verb and table
# Subclasses add no fields; they exist so each op type has its own macro and reads as what it does.
# They inherit the dataclass methods (eq, hash, repr use the subclass) and stay plain classes with
# empty __slots__: 26 more @dataclass(slots=True) decorations cost ~30 ms on every compile.


class CreateOrganizationOp(CreateOp):
    __slots__ = ()
    table: ClassVar[str] = "organizations"


class UpdateOrganizationOp(UpdateOp):
    __slots__ = ()
    table: ClassVar[str] = "organizations"


class DeleteOrganizationOp(DeleteOp):
    __slots__ = ()
    table: ClassVar[str] = "organizations"


class CreateUserOp(CreateOp):
    __slots__ = ()
    table: ClassVar[str] = "users"


class UpdateUserOp(UpdateOp):
    __slots__ = ()
    table: ClassVar[str] = "users"


class DeleteUserOp(DeleteOp):
    __slots__ = ()
    table: ClassVar[str] = "users"


class CreateOrganizationMemberOp(CreateOp):
    __slots__ = ()
    table: ClassVar[str] = "organization_members"


class DeleteOrganizationMemberOp(DeleteOp):
    __slots__ = ()
    table: ClassVar[str] = "organization_members"


class CreateProviderOp(CreateOp):
    __slots__ = ()
    table: ClassVar[str] = "providers"


class UpdateProviderOp(UpdateOp):
    __slots__ = ()
    table: ClassVar[str] = "providers"


class DeleteProviderOp(DeleteOp):
    __slots__ = ()
    table: ClassVar[str] = "providers"


class CreateModelOp(CreateOp):
    __slots__ = ()
    table: ClassVar[str] = "model_categories"


class UpdateModelOp(UpdateOp):
    __slots__ = ()
    table: ClassVar[str] = "model_categories"


class DeleteModelOp(DeleteOp):
    __slots__ = ()
    table: ClassVar[str] = "model_categories"


class CreateConnectionOp(CreateOp):
    __slots__ = ()
    table: ClassVar[str] = "connections"


class UpdateConnectionOp(UpdateOp):
    __slots__ = ()
    table: ClassVar[str] = "connections"


class DeleteConnectionOp(DeleteOp):
    __slots__ = ()
    table: ClassVar[str] = "connections"


class CreateCollectionOp(CreateOp):
    __slots__ = ()
    table: ClassVar[str] = "model_collections"


class UpdateCollectionOp(UpdateOp):
    __slots__ = ()
    table: ClassVar[str] = "model_collections"


class DeleteCollectionOp(DeleteOp):
    __slots__ = ()
    table: ClassVar[str] = "model_collections"


class CreateMemberOp(CreateOp):
    __slots__ = ()
    table: ClassVar[str] = "model_collection_members"


class UpdateMemberOp(UpdateOp):
    __slots__ = ()
    table: ClassVar[str] = "model_collection_members"


class DeleteMemberOp(DeleteOp):
    __slots__ = ()
    table: ClassVar[str] = "model_collection_members"


class CreateSystemPropertyOp(CreateOp):
    __slots__ = ()
    table: ClassVar[str] = "system_properties"


class UpdateSystemPropertyOp(UpdateOp):
    __slots__ = ()
    table: ClassVar[str] = "system_properties"


class DeleteSystemPropertyOp(DeleteOp):
    __slots__ = ()
    table: ClassVar[str] = "system_properties"


# table -> (create, update, delete); organization_members has no updatable columns
OP_TYPES: dict[str, tuple[type[CreateOp], type[UpdateOp] | None, type[DeleteOp]]] = {
    "organizations": (CreateOrganizationOp, UpdateOrganizationOp, DeleteOrganizationOp),
    "users": (CreateUserOp, UpdateUserOp, DeleteUserOp),
    "organization_members": (CreateOrganizationMemberOp, None, DeleteOrganizationMemberOp),
    "providers": (CreateProviderOp, UpdateProviderOp, DeleteProviderOp),
    "model_categories": (CreateModelOp, UpdateModelOp, DeleteModelOp),
    "connections": (CreateConnectionOp, UpdateConnectionOp, DeleteConnectionOp),
    "model_collections": (CreateCollectionOp, UpdateCollectionOp, DeleteCollectionOp),
    "model_collection_members": (CreateMemberOp, UpdateMemberOp, DeleteMemberOp),
    "system_properties": (CreateSystemPropertyOp, UpdateSystemPropertyOp, DeleteSystemPropertyOp),
}


def macro_name(op_type: type[object]) -> str:
    """The template macro that renders an op type: CreateMemberOp -> create_member."""
    name = op_type.__name__.removesuffix("Op")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
