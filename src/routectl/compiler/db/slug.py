"""The `<slug>` of `NNNN_<slug>.sql`: what a migration changes, in a few filesystem-safe words."""

from __future__ import annotations

import re

from routectl.compiler.db.ops import (
    CreateCollectionOp,
    CreateMemberOp,
    CreateOp,
    CreateOrganizationMemberOp,
    DeleteCollectionOp,
    DeleteMemberOp,
    DeleteOp,
    DeleteOrganizationMemberOp,
    Op,
    UpdateMemberOp,
    UpdateOp,
    UpgradeSchemaOp,
)
from routectl.compiler.db.rows import TABLES

__all__ = ["MAX_SLUG", "slug_for"]

MAX_SLUG = 60
_NOUN = {spec.name: spec.noun for spec in TABLES}
_DERIVED = {spec.name: spec.derived for spec in TABLES}
# rows that only mirror other changes: the auto-free property follows the auto-free collection
_DERIVED_TABLES = frozenset({"system_properties"})


def _safe(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.")


def _short_model(model: str) -> str:
    return model.rsplit("/", 1)[-1]


def _headlines(ops: list[Op]) -> list[Op]:
    """The ops a reviewer would name: not members of an added/removed collection, not derived columns."""
    whole = {op.key for op in ops if isinstance(op, CreateCollectionOp | DeleteCollectionOp)}
    out: list[Op] = []
    for op in ops:
        if isinstance(op, UpgradeSchemaOp) or op.table in _DERIVED_TABLES:
            continue
        if isinstance(op, CreateMemberOp | DeleteMemberOp | UpdateMemberOp) and (
            op.key.split(":", 1)[0] in whole
        ):
            continue
        if isinstance(op, UpdateOp) and all(c.column in _DERIVED[op.table] for c in op.changes):
            continue
        out.append(op)
    return out


# words for columns in slugs; owner columns all say "owner"
_WORDS = {
    "routing_strategy": "strategy",
    "organization_id": "owner",
    "owner_user_id": "owner",
    "owner_handle": "owner",
    "is_active": "active",
    "property_value": "value",
}
# which change names a multi-change migration: the one a reviewer looks for first
_NOUN_ORDER = (
    "collection",
    "model",
    "member",
    "organization_member",
    "connection",
    "organization",
    "user",
    "provider",
    "system_property",
)


def _columns(op: UpdateOp) -> str:
    words = [
        _WORDS.get(c.column, c.column) for c in op.changes if c.column not in _DERIVED[op.table]
    ]
    unique = list(dict.fromkeys(words))
    return "_".join(unique) if len(unique) <= 2 else "settings"


def _collection_of(op: Op) -> str | None:
    if op.table == "model_collections":
        return op.key
    if op.table == "model_collection_members":
        return op.key.split(":", 1)[0]
    return None


def _describe(op: Op) -> str:
    noun = _NOUN[op.table]
    if isinstance(op, CreateMemberOp | DeleteMemberOp | UpdateMemberOp):
        collection, model = op.key.split(":", 1)
        if isinstance(op, UpdateMemberOp):
            return f"{collection}_change_{_columns(op)}_{_short_model(model)}"
        verb = "add" if isinstance(op, CreateMemberOp) else "remove"
        return f"{collection}_{verb}_member_{_short_model(model)}"
    if isinstance(op, CreateOrganizationMemberOp | DeleteOrganizationMemberOp):
        org, user = op.key.split("/", 1)
        verb = "add" if isinstance(op, CreateOrganizationMemberOp) else "remove"
        return f"{org}_{verb}_member_{user}"
    if isinstance(op, CreateOp):
        return f"add_{noun}_{_short_model(op.key)}"
    if isinstance(op, DeleteOp):
        return f"remove_{noun}_{_short_model(op.key)}"
    assert isinstance(op, UpdateOp)  # schema upgrades are never headlines
    return f"{_short_model(op.key)}_change_{_columns(op)}"


def slug_for(ops: list[Op]) -> str:
    """`flash2.5_add_member_claude-3-haiku` for one change, else a short summary of what changed."""
    heads = sorted(_headlines(ops), key=lambda op: _NOUN_ORDER.index(_NOUN[op.table]))
    collections = {_collection_of(op) for op in heads}
    upgrade = next((op for op in ops if isinstance(op, UpgradeSchemaOp)), None)
    if upgrade is not None:
        # a schema upgrade names the migration; the row changes it carries along are counted
        text = f"schema_v{upgrade.to_version}"
        if heads:
            text += f"_and_{len(heads)}_change{'s' if len(heads) > 1 else ''}"
    elif not heads:
        text = "derived_changes" if ops else "no_changes"
    elif len(heads) == 1:
        text = _describe(heads[0])
    elif (renamed := _rename(heads)) is not None:
        text = renamed
    elif None not in collections and len(collections) > 1:
        text = f"{len(collections)}_collections_changed"
    else:
        text = f"{_describe(heads[0])}_and_{len(heads) - 1}_more"
    safe = _safe(text)[:MAX_SLUG].strip("-._")
    return safe or "changes"


def _rename(heads: list[Op]) -> str | None:
    """A collection removed and one added with nothing else: most likely a rename."""
    if len(heads) != 2:
        return None
    added = [op for op in heads if isinstance(op, CreateCollectionOp)]
    removed = [op for op in heads if isinstance(op, DeleteCollectionOp)]
    if len(added) == 1 and len(removed) == 1:
        return f"rename_{removed[0].key}_to_{added[0].key}"
    return None
