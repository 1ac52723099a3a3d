"""compare(old, new) -> ops, without a database: set algebra on natural keys."""

from __future__ import annotations

import dataclasses

from routectl.compiler.db.compare import compare
from routectl.compiler.db.ops import (
    OP_TYPES,
    Change,
    CreateCollectionOp,
    CreateMemberOp,
    CreateModelOp,
    CreateOp,
    CreateOrganizationMemberOp,
    DeleteCollectionOp,
    DeleteMemberOp,
    DeleteModelOp,
    DeleteOp,
    DeleteOrganizationMemberOp,
    Op,
    UpdateCollectionOp,
    UpdateConnectionOp,
    UpdateMemberOp,
    UpdateOp,
    UpdateSystemPropertyOp,
)
from routectl.compiler.db.rows import TABLES, Json, row_id
from routectl.compiler.db.slug import slug_for

from .db_revisions import REVISION_NAMES, revision_tables


def _ops(name: str) -> list[Op]:
    """The ops of the revision named `name`, against the revision before it."""
    tables = revision_tables()
    k = REVISION_NAMES.index(name)
    return compare(tables[k - 1], tables[k])


def _summary(ops: list[Op]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(op type, natural key, changed columns) of each op: what a reviewer reads."""
    return [
        (
            type(op).__name__,
            op.key,
            tuple(c.column for c in op.changes) if isinstance(op, UpdateOp) else (),
        )
        for op in ops
    ]


def test_no_change_gives_no_ops() -> None:
    table = revision_tables()[3]
    assert compare(table, table) == []
    # a copy with equal content (not the same object) is also unchanged
    assert compare(table, dataclasses.replace(table)) == []


def test_first_deploy_creates_every_row_parents_first() -> None:
    table = revision_tables()[0]
    ops = compare(None, table)
    assert all(isinstance(op, CreateOp) for op in ops)
    order = [spec.name for spec in TABLES]
    positions = [order.index(op.table) for op in ops]
    assert positions == sorted(positions)
    assert len([op for op in ops if isinstance(op, CreateCollectionOp)]) == len(table.collections)
    ab = next(op for op in ops if isinstance(op, CreateCollectionOp) and op.key == "ab")
    assert ab.id == row_id("collection", "ab")
    assert dict(ab.values)["routing_strategy"] == "weighted"
    assert dict(ab.values)["metadata"] == Json({"tags": ["experiment"]})


def test_add_member_creates_it_and_renormalizes_the_others() -> None:
    ops = _ops("ab_add_member")
    assert _summary(ops) == [
        ("UpdateMemberOp", "ab:echo/echo-1", ("normalized_weight",)),
        ("UpdateMemberOp", "ab:echo/echo-mini", ("normalized_weight",)),
        ("CreateMemberOp", "ab:openai/gpt-4o-mini", ()),
    ]
    created = ops[2]
    assert isinstance(created, CreateMemberOp)
    values = dict(created.values)
    assert values["weight"] == 0.5
    assert values["normalized_weight"] == 0.5 / 1.5
    assert values["model_category_id"] == row_id("model", "openai/gpt-4o-mini")
    assert slug_for(ops) == "ab_add_member_gpt-4o-mini"


def test_weight_change_is_one_update_with_old_and_new_values() -> None:
    ops = _ops("ab_change_weight")
    first = ops[0]
    assert isinstance(first, UpdateMemberOp)
    assert first.key == "ab:echo/echo-1"
    assert first.changes[0] == Change("weight", 0.7, 0.6)
    assert slug_for(ops) == "ab_change_weight_echo-1"


def test_priority_change_reorders_members() -> None:
    ops = _ops("team_change_priority")
    assert _summary(ops) == [
        ("UpdateMemberOp", "team:echo/echo-1", ("priority", "position")),
        ("UpdateMemberOp", "team:openai/gpt-4o-mini", ("position",)),
    ]
    assert slug_for(ops) == "team_change_priority_echo-1"


def test_strategy_and_metadata_change_update_the_collection_only() -> None:
    ops = _ops("ab_change_strategy_and_metadata")
    assert len(ops) == 1
    op = ops[0]
    assert isinstance(op, UpdateCollectionOp)
    assert [c.column for c in op.changes] == ["routing_strategy", "metadata"]
    assert op.changes[0] == Change("routing_strategy", "weighted", "round_robin")
    assert slug_for(ops) == "ab_change_strategy_metadata"


def test_scope_change_moves_the_owner_columns() -> None:
    (op,) = _ops("team_change_scope")
    assert isinstance(op, UpdateCollectionOp)
    changes = {c.column: (c.old, c.new) for c in op.changes}
    assert changes == {
        "scope": ("organization", "user"),
        "organization_id": (row_id("organization", "acme"), None),
        "owner_user_id": (None, row_id("user", "ann")),
        "owner_handle": ("acme", "ann"),
    }
    assert slug_for([op]) == "team_change_scope_owner"


def test_new_model_and_collection() -> None:
    ops = _ops("add_model_and_collection")
    assert _summary(ops) == [
        ("CreateModelOp", "openai/gpt-4o", ()),
        ("UpdateConnectionOp", "acme-openai", ("models", "upstream_names")),
        ("CreateCollectionOp", "premium", ()),
        ("CreateMemberOp", "premium:openai/gpt-4o", ()),
        ("CreateMemberOp", "premium:acme/openai/gpt-4o-mini", ()),
    ]
    pinned = ops[4]
    assert isinstance(pinned, CreateMemberOp)
    assert dict(pinned.values)["handle"] == "acme"
    assert dict(pinned.values)["tags"] == ("cheap",)
    assert slug_for(ops) == "add_collection_premium_and_2_more"


def test_rename_is_a_new_collection_and_the_old_one_deleted_children_first() -> None:
    ops = _ops("rename_ab_to_split")
    kinds = [type(op) for op in ops]
    assert kinds.count(CreateCollectionOp) == 1
    assert kinds.count(DeleteCollectionOp) == 1
    assert kinds.count(CreateMemberOp) == kinds.count(DeleteMemberOp) == 3
    # every create comes before every delete; member deletes before the collection delete
    last_create = max(i for i, op in enumerate(ops) if isinstance(op, CreateOp))
    first_delete = min(i for i, op in enumerate(ops) if isinstance(op, DeleteOp))
    assert last_create < first_delete
    assert isinstance(ops[-1], DeleteCollectionOp) and ops[-1].key == "ab"
    assert slug_for(ops) == "rename_ab_to_split"


def test_remove_member() -> None:
    ops = _ops("team_remove_member")
    assert _summary(ops)[-1] == ("DeleteMemberOp", "team:echo/echo-1", ())
    assert slug_for(ops) == "team_remove_member_echo-1"


def test_organization_membership() -> None:
    ops = _ops("acme_add_member_bob")
    assert ops == [
        CreateOrganizationMemberOp(
            key="acme/bob",
            id=row_id("organization_member", "acme/bob"),
            values=(
                ("organization_id", row_id("organization", "acme")),
                ("user_id", row_id("user", "bob")),
            ),
        )
    ]
    assert slug_for(ops) == "acme_add_member_bob"
    removed = _ops("remove_collection_and_org_member")
    assert any(
        isinstance(op, DeleteOrganizationMemberOp) and op.key == "acme/bob" for op in removed
    )


def test_auto_free_membership_updates_the_system_property() -> None:
    ops = _ops("auto_free_add_member")
    prop = next(op for op in ops if isinstance(op, UpdateSystemPropertyOp))
    assert prop.key == "routing.auto_free_models"
    assert prop.changes == (
        Change(
            "property_value",
            Json(["echo/echo-1", "echo/echo-mini"]),
            Json(["echo/echo-1", "echo/echo-mini", "openai/gpt-4o-mini"]),
        ),
    )
    # the property follows from the membership, so the slug names the membership
    assert slug_for(ops) == "auto-free_add_member_gpt-4o-mini"


def test_removing_a_model_removes_its_members_before_it() -> None:
    ops = _ops("remove_model_echo_mini")
    names = [(type(op).__name__, op.key) for op in ops]
    model_delete = names.index(("DeleteModelOp", "echo/echo-mini"))
    member_deletes = [i for i, (kind, _) in enumerate(names) if kind == "DeleteMemberOp"]
    assert member_deletes and max(member_deletes) < model_delete
    assert any(isinstance(op, UpdateConnectionOp) and op.key == "platform-echo" for op in ops)
    assert isinstance(ops[model_delete], DeleteModelOp)
    assert slug_for(ops) == "remove_model_echo-mini_and_3_more"


def test_inactive_member_is_a_column_not_a_removal() -> None:
    ops = _ops("remove_collection_and_org_member")
    created = next(op for op in ops if isinstance(op, CreateMemberOp))
    assert created.key == "team:echo/echo-1"
    assert dict(created.values)["is_active"] is False
    assert dict(created.values)["normalized_weight"] == 0.0


def test_every_table_has_its_op_types() -> None:
    assert set(OP_TYPES) == {spec.name for spec in TABLES}
    for table, (create, update, delete) in OP_TYPES.items():
        assert create.table == delete.table == table
        assert update is None or update.table == table
    assert CreateModelOp.table == "model_categories"
