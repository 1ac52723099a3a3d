"""Migration operations: small frozen values, one class per verb and table, rendered by a macro each."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
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


Op = CreateOp | UpdateOp | DeleteOp


# ----------------------------------------------------------------- one class per verb and table
# Subclasses add no fields; they exist so each op type has its own macro and reads as what it does.


@dataclass(frozen=True, slots=True)
class CreateOrganizationOp(CreateOp):
    table: ClassVar[str] = "organizations"


@dataclass(frozen=True, slots=True)
class UpdateOrganizationOp(UpdateOp):
    table: ClassVar[str] = "organizations"


@dataclass(frozen=True, slots=True)
class DeleteOrganizationOp(DeleteOp):
    table: ClassVar[str] = "organizations"


@dataclass(frozen=True, slots=True)
class CreateUserOp(CreateOp):
    table: ClassVar[str] = "users"


@dataclass(frozen=True, slots=True)
class UpdateUserOp(UpdateOp):
    table: ClassVar[str] = "users"


@dataclass(frozen=True, slots=True)
class DeleteUserOp(DeleteOp):
    table: ClassVar[str] = "users"


@dataclass(frozen=True, slots=True)
class CreateOrganizationMemberOp(CreateOp):
    table: ClassVar[str] = "organization_members"


@dataclass(frozen=True, slots=True)
class DeleteOrganizationMemberOp(DeleteOp):
    table: ClassVar[str] = "organization_members"


@dataclass(frozen=True, slots=True)
class CreateProviderOp(CreateOp):
    table: ClassVar[str] = "providers"


@dataclass(frozen=True, slots=True)
class UpdateProviderOp(UpdateOp):
    table: ClassVar[str] = "providers"


@dataclass(frozen=True, slots=True)
class DeleteProviderOp(DeleteOp):
    table: ClassVar[str] = "providers"


@dataclass(frozen=True, slots=True)
class CreateModelOp(CreateOp):
    table: ClassVar[str] = "model_categories"


@dataclass(frozen=True, slots=True)
class UpdateModelOp(UpdateOp):
    table: ClassVar[str] = "model_categories"


@dataclass(frozen=True, slots=True)
class DeleteModelOp(DeleteOp):
    table: ClassVar[str] = "model_categories"


@dataclass(frozen=True, slots=True)
class CreateConnectionOp(CreateOp):
    table: ClassVar[str] = "connections"


@dataclass(frozen=True, slots=True)
class UpdateConnectionOp(UpdateOp):
    table: ClassVar[str] = "connections"


@dataclass(frozen=True, slots=True)
class DeleteConnectionOp(DeleteOp):
    table: ClassVar[str] = "connections"


@dataclass(frozen=True, slots=True)
class CreateCollectionOp(CreateOp):
    table: ClassVar[str] = "model_collections"


@dataclass(frozen=True, slots=True)
class UpdateCollectionOp(UpdateOp):
    table: ClassVar[str] = "model_collections"


@dataclass(frozen=True, slots=True)
class DeleteCollectionOp(DeleteOp):
    table: ClassVar[str] = "model_collections"


@dataclass(frozen=True, slots=True)
class CreateMemberOp(CreateOp):
    table: ClassVar[str] = "model_collection_members"


@dataclass(frozen=True, slots=True)
class UpdateMemberOp(UpdateOp):
    table: ClassVar[str] = "model_collection_members"


@dataclass(frozen=True, slots=True)
class DeleteMemberOp(DeleteOp):
    table: ClassVar[str] = "model_collection_members"


@dataclass(frozen=True, slots=True)
class CreateSystemPropertyOp(CreateOp):
    table: ClassVar[str] = "system_properties"


@dataclass(frozen=True, slots=True)
class UpdateSystemPropertyOp(UpdateOp):
    table: ClassVar[str] = "system_properties"


@dataclass(frozen=True, slots=True)
class DeleteSystemPropertyOp(DeleteOp):
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
