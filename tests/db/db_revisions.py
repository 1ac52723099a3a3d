"""A history of routing.yaml revisions: r01_base.yaml, then one named edit per revision.

Together they cover every kind of change a migration must carry: add/remove/rename a collection,
add/remove a member, weight, priority, active, strategy, scope, metadata, add/remove a model,
organization membership and auto-free membership.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from routectl.compiler import build_table
from routectl.compiler.db.outputs import sql_outputs
from routectl.table import RoutingTable

BASE = Path(__file__).parent / "revisions" / "r01_base.yaml"

Config = dict[str, Any]


def _member(config: Config, collection: str, model: str) -> dict[str, Any]:
    members: list[dict[str, Any]] = config["collections"][collection]["members"]
    return next(m for m in members if m["model"] == model)


def ab_add_member(c: Config) -> None:
    c["collections"]["ab"]["members"].append({"model": "openai/gpt-4o-mini", "weight": 0.5})


def ab_change_weight(c: Config) -> None:
    _member(c, "ab", "echo/echo-1")["weight"] = 0.6


def team_change_priority(c: Config) -> None:
    _member(c, "team", "echo/echo-1")["priority"] = 10


def ab_change_strategy_and_metadata(c: Config) -> None:
    c["collections"]["ab"]["strategy"] = "round_robin"
    c["collections"]["ab"]["metadata"] = {
        "tags": ["experiment", "round-2"],
        "note": 'Ann\'s "A/B" test; path C:\\temp',
    }


def team_change_scope(c: Config) -> None:
    c["collections"]["team"]["scope"] = "user"
    c["collections"]["team"]["owner"] = "ann"


def add_model_and_collection(c: Config) -> None:
    c["models"]["openai/gpt-4o"] = {
        "context_window": 128000,
        "max_output_tokens": 16384,
        "pricing": {"input_per_mtok": 2.5, "output_per_mtok": 10.0},
        "capabilities": ["tools", "vision"],
        "trust_level": 90,
    }
    c["connections"][1]["models"].append("openai/gpt-4o")
    c["collections"]["premium"] = {
        "display_name": "Premium",
        "description": "Best first.",
        "scope": "organization",
        "owner": "acme",
        "strategy": "fallback",
        "members": [
            {"model": "openai/gpt-4o", "priority": 10},
            {"model": "acme/openai/gpt-4o-mini", "priority": 5, "tags": ["cheap"]},
        ],
    }


def rename_ab_to_split(c: Config) -> None:
    c["collections"]["split"] = c["collections"].pop("ab")


def team_remove_member(c: Config) -> None:
    members = c["collections"]["team"]["members"]
    c["collections"]["team"]["members"] = [m for m in members if m["model"] != "echo/echo-1"]


def acme_add_member_bob(c: Config) -> None:
    c["organizations"]["acme"]["members"].append("bob")


def auto_free_add_member(c: Config) -> None:
    c["collections"]["auto-free"]["members"].append({"model": "openai/gpt-4o-mini"})


def remove_model_echo_mini(c: Config) -> None:
    del c["models"]["echo/echo-mini"]
    c["connections"][0]["models"] = ["echo/echo-1"]
    for collection in c["collections"].values():
        collection["members"] = [m for m in collection["members"] if m["model"] != "echo/echo-mini"]


def remove_collection_and_org_member(c: Config) -> None:
    del c["collections"]["premium"]
    c["organizations"]["acme"]["members"].remove("bob")
    c["collections"]["team"]["members"].append({"model": "echo/echo-1", "active": False})


def tricky_text(c: Config) -> None:
    c["collections"]["split"]["description"] = (
        "line one\nline two; DROP TABLE users; -- 'quoted' \\"
    )
    c["organizations"]["acme"]["display_name"] = "Acme \u00e9\u00e8 \u2603 O'Brien"


EDITS: tuple[Callable[[Config], None], ...] = (
    ab_add_member,
    ab_change_weight,
    team_change_priority,
    ab_change_strategy_and_metadata,
    team_change_scope,
    add_model_and_collection,
    rename_ab_to_split,
    team_remove_member,
    acme_add_member_bob,
    auto_free_add_member,
    remove_model_echo_mini,
    remove_collection_and_org_member,
    tricky_text,
)


@cache
def revision_texts() -> tuple[str, ...]:
    """The YAML text of every revision, base first."""
    config: Config = yaml.safe_load(BASE.read_text(encoding="utf-8"))
    texts = [BASE.read_text(encoding="utf-8")]
    for edit in EDITS:
        config = copy.deepcopy(config)
        edit(config)
        texts.append(f"# after {edit.__name__}\n" + yaml.safe_dump(config, sort_keys=False))
    return tuple(texts)


@cache
def revision_tables() -> tuple[RoutingTable, ...]:
    """The compiled table of every revision."""
    return tuple(build_table(text=text) for text in revision_texts())


REVISION_NAMES = ("base", *(edit.__name__ for edit in EDITS))


@dataclass(frozen=True)
class Step:
    """One compile of the history: the table, its seed, and the migration it added."""

    table: RoutingTable
    seed: str
    migration_name: str
    migration: str


@cache
def compile_history() -> tuple[Step, ...]:
    """Compile every revision in turn, as `routectl compile` would, keeping what each one wrote."""
    existing: dict[str, bytes] = {}
    previous: RoutingTable | None = None
    steps = []
    for table in revision_tables():
        out = sql_outputs(previous, table, existing)
        (path,) = (p for p in out if p != "seed.sql")
        existing[path] = out[path]
        steps.append(
            Step(
                table=table,
                seed=out["seed.sql"].decode(),
                migration_name=Path(path).stem,
                migration=out[path].decode(),
            )
        )
        previous = table
    return tuple(steps)
