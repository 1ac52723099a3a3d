"""Loading a table the fast way gives exactly the table that was dumped, and leaves no trace."""

from __future__ import annotations

import dataclasses
import gc
from pathlib import Path

import orjson
import pytest
from conftest import make_table

from routectl.table import (
    Collection,
    Member,
    RoutingTable,
    TableError,
    dump_table,
    load_table,
    load_table_bytes,
    table_from_dict,
    table_to_dict,
)

MANY = "".join(
    f"  c{i}:\n    scope: system\n    strategy: {s}\n    aliases: [a{i}]\n"
    f"    metadata: {{team: t{i}}}\n"
    "    members:\n"
    "      - {model: fake/m1, weight: 0.7, priority: 5, tags: [fast, cheap]}\n"
    "      - {model: acme/fake/m2, weight: 0.3}\n"
    "      - {model: echo/e1, active: false}\n"
    for i, s in enumerate(["weighted", "priority", "least_used", "round_robin"] * 5)
)


@pytest.fixture(scope="module")
def table() -> RoutingTable:
    return make_table(collections=MANY)


def test_load_gives_back_the_dumped_table_field_for_field(
    table: RoutingTable, tmp_path: Path
) -> None:
    raw, digest = dump_table(table)
    path = tmp_path / "routing_table.json"
    path.write_bytes(raw)
    for loaded in (load_table(path), load_table_bytes(raw)):
        assert loaded == dataclasses.replace(table, sha256=digest)
        assert dump_table(loaded)[0] == raw  # byte for byte, so the same hash
        member = loaded.collections["c0"].members[0]
        assert type(member) is Member and type(loaded.collections["c0"]) is Collection
        assert member.tags == ("fast", "cheap") and member.weight == 0.7
        assert loaded.collections["c0"].metadata == {"team": "t0"}
        # ordinary frozen dataclasses: replace, hashing of fields and immutability all work
        assert dataclasses.replace(member, weight=0.5).weight == 0.5
        with pytest.raises(dataclasses.FrozenInstanceError):
            member.weight = 1.0  # type: ignore[misc]


def test_equal_strings_and_tuples_are_shared(table: RoutingTable) -> None:
    loaded = load_table_bytes(dump_table(table)[0])
    members = [m for c in loaded.collections.values() for m in c.members]
    one_each = {m.model_id: m.model_id for m in members}
    assert len(members) > 3 * len(one_each)
    assert all(m.model_id is one_each[m.model_id] for m in members)
    fallbacks = [c.fallback_on for c in loaded.collections.values()]
    assert all(f is fallbacks[0] for f in fallbacks)


def test_table_from_dict_leaves_the_callers_data_alone(table: RoutingTable) -> None:
    data = table_to_dict(table)
    before = orjson.dumps(data)
    assert table_from_dict(data, table.sha256) == table
    assert orjson.dumps(data) == before


@pytest.mark.parametrize("was_enabled", [True, False])
def test_the_collector_is_restored_after_a_load(table: RoutingTable, was_enabled: bool) -> None:
    raw, _ = dump_table(table)
    (gc.enable if was_enabled else gc.disable)()
    try:
        load_table_bytes(raw)
        assert gc.isenabled() is was_enabled
        with pytest.raises(TableError):
            load_table_bytes(raw.replace(b'"c0"', b'"cX"'))  # hash mismatch
        assert gc.isenabled() is was_enabled
    finally:
        gc.enable()


def test_a_malformed_table_is_still_refused(table: RoutingTable) -> None:
    data = table_to_dict(table)
    del data["collections"]["c1"]["members"][0]["weight"]
    with pytest.raises(TableError, match="malformed"):
        table_from_dict(data)


def test_collection_routes_are_built_on_first_use(table: RoutingTable) -> None:
    from routectl.runtime.index import TableIndex

    index = TableIndex(table)
    assert len(index.collection_routes) == 0  # a 10,000-collection table starts in milliseconds
    route = index.collection_routes["c3"]
    assert route.requested == "collection/c3"
    assert route.strategy == "round_robin"
    assert [m.model_id for m in route.members] == ["fake/m1", "fake/m2", "echo/e1"]
    assert index.collection_routes["c3"] is route  # built once
    assert list(index.collection_routes) == ["c3"]
    with pytest.raises(KeyError):
        index.collection_routes["no-such-collection"]
