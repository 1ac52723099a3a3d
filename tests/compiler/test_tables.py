"""Compiled tables: snapshots of whole tables, and the resolution rules checked one by one."""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from routectl.compiler import build_table
from routectl.table import RoutingTable, dump_table, load_table_bytes

REPO = Path(__file__).resolve().parents[2]
VALID = sorted((REPO / "tests" / "fixtures" / "valid").glob("*.yaml"))


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_config_table(path: Path, snapshot: SnapshotAssertion) -> None:
    table = build_table(path)
    raw, digest = dump_table(table)
    assert table.sha256 == digest
    assert load_table_bytes(raw) == table
    assert raw.decode() == snapshot


def test_repo_routing_yaml_table(snapshot: SnapshotAssertion) -> None:
    table = build_table(REPO / "routing.yaml")
    assert dump_table(table)[0].decode() == snapshot


def test_repo_generated_table_is_current() -> None:
    raw = (REPO / "generated" / "routing_table.json").read_bytes()
    assert raw == dump_table(build_table(REPO / "routing.yaml"))[0]


@pytest.fixture(scope="module")
def resolution() -> RoutingTable:
    return build_table(REPO / "tests" / "fixtures" / "valid" / "resolution.yaml")


def test_defaults_are_resolved(resolution: RoutingTable) -> None:
    d = resolution.defaults
    assert (d.priority_user, d.priority_organization, d.priority_platform) == (90, 40, 10)
    assert (d.cooldown_s, d.timeout_ms, d.max_attempts, d.allowed_fails) == (12.5, 20000, 2, 5)
    assert d.fallback_on == ("429", "timeout")
    team = resolution.collections["zeta-team"]
    assert (team.fallback_on, team.max_attempts, team.timeout_ms) == (("429", "timeout"), 2, 20000)
    mixed = resolution.collections["mixed"]
    assert (mixed.fallback_on, mixed.max_attempts, mixed.timeout_ms) == (
        ("500", "502", "connect_error"),
        4,
        5000,
    )


def test_members_ordered_by_priority_then_declaration(resolution: RoutingTable) -> None:
    members = resolution.collections["mixed"].members
    assert [(m.priority, m.declared_index) for m in members] == [(5, 1), (5, 3), (0, 0), (0, 2)]
    assert [m.model for m in members] == [
        "openai/gpt-4o-mini",
        "alpha/openai/gpt-4o",
        "openai/gpt-4o",
        "zeta/openai/gpt-4o-mini",
    ]


def test_normalized_weights_count_active_members_only(resolution: RoutingTable) -> None:
    weights = {m.model: m.normalized_weight for m in resolution.collections["mixed"].members}
    assert weights["zeta/openai/gpt-4o-mini"] == 0.0
    assert weights["openai/gpt-4o-mini"] == pytest.approx(0.6)
    assert weights["openai/gpt-4o"] == pytest.approx(0.2)
    assert sum(weights.values()) == pytest.approx(1.0)


def test_pinned_member_keeps_handle(resolution: RoutingTable) -> None:
    pinned = resolution.collections["mixed"].members[1]
    assert (pinned.handle, pinned.model_id) == ("alpha", "openai/gpt-4o")
    plain = resolution.collections["mixed"].members[0]
    assert (plain.handle, plain.model_id) == (None, "openai/gpt-4o-mini")


def test_connection_order_priority_then_owner_kind_then_id(resolution: RoutingTable) -> None:
    # uma-openai 40 (explicit, user), a-alpha 40 (org default), b-zeta 40 (org default),
    # z-platform 40 (explicit, platform): equal priority, so user < organization < platform, then id
    assert resolution.model_connections["openai/gpt-4o"] == (
        "uma-openai",
        "a-alpha",
        "b-zeta",
        "z-platform",
    )
    assert resolution.model_connections["openai/gpt-4o-mini"] == ("b-zeta",)


def test_connections_are_resolved(resolution: RoutingTable) -> None:
    uma = resolution.connections["uma-openai"]
    assert (uma.owner_kind, uma.priority, uma.base_url, uma.api) == (
        "user",
        40,
        "https://proxy.example/v1",
        "openai",
    )
    zeta = resolution.connections["b-zeta"]
    assert (zeta.owner_kind, zeta.priority, zeta.base_url, zeta.api_key_env) == (
        "organization",
        40,
        "https://api.openai.com/v1",
        "ZETA_KEY",
    )
    assert zeta.upstream_names == {"openai/gpt-4o": "gpt-4o", "openai/gpt-4o-mini": "gpt-4o-mini"}
    local = resolution.connections["uma-local"]
    assert local.priority == 90
    assert local.upstream_names == {"local/Llama-3.1-8B:instruct": "llama3.1:8b"}


def test_users_organizations_aliases_and_keys(resolution: RoutingTable) -> None:
    assert resolution.users["uma"].organizations == ("alpha", "zeta")
    assert resolution.users["ann"].organizations == ("zeta",)
    assert resolution.users["ann"].display_name == "ann"
    digest = "sha256:" + "1" * 64
    assert resolution.api_keys == {digest: "uma"}
    # system collections by own name and alias; user and organization collections never
    assert resolution.aliases == {"mixed": "mixed", "mix": "mixed"}
    assert resolution.collections["mixed"].strategy == "weighted"
    assert resolution.collections["uma-private"].strategy == "fallback"


def test_models_are_resolved(resolution: RoutingTable) -> None:
    model = resolution.models["local/Llama-3.1-8B:instruct"]
    assert (model.provider, model.name, model.free, model.trust_level) == (
        "local",
        "Llama-3.1-8B:instruct",
        True,
        50,
    )
    gpt = resolution.models["openai/gpt-4o"]
    assert gpt.cost == 12.5
    assert gpt.capabilities == ("tools", "vision")


def test_repo_table_has_what_the_issue_asks_for() -> None:
    table = build_table(REPO / "routing.yaml")
    assert table.model_connections["openai/gpt-4o"] == (
        "john-dev-openai",
        "acme-openai",
        "platform-openai",
    )
    assert [table.connections[c].priority for c in table.model_connections["openai/gpt-4o"]] == [
        100,
        50,
        0,
    ]
    assert table.aliases["auto(free)"] == "auto-free"
    assert all(table.models[m.model_id].free for m in table.collections["auto-free"].members)
    strategies = {c.strategy for c in table.collections.values()}
    assert {"round_robin", "random", "weighted", "fallback", "least_used"} <= strategies
    assert {"cost_optimized", "latency_optimized"} <= strategies
    ab = [m.normalized_weight for m in table.collections["ab-test"].members]
    assert ab == [0.7, 0.3]
    assert table.users["john-dev"].organizations == ("acme-corp",)


def test_normalized_weights_are_exact_sums() -> None:
    # ten weights of 0.1: sum() gives 0.9999999999999999 on Python 3.11 and 1.0 on 3.12+ (and so
    # different bytes); fsum gives 1.0 everywhere
    members = "".join(f"      - {{model: echo/e{i}, weight: 0.1}}\n" for i in range(10))
    models = "".join(f"  echo/e{i}: {{}}\n" for i in range(10))
    text = (
        "version: 1\nproviders:\n  echo: {api: echo}\nmodels:\n"
        + models
        + "connections:\n  - {id: p, owner: platform, provider: echo, models: ["
        + ", ".join(f"echo/e{i}" for i in range(10))
        + "]}\ncollections:\n  ten:\n    scope: system\n    strategy: weighted\n    members:\n"
        + members
    )
    table = build_table(text=text)
    assert {m.normalized_weight for m in table.collections["ten"].members} == {0.1}
