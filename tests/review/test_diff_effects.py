"""`routectl diff` effects: one snapshot (Markdown and JSON) per kind of change, and hand-checked numbers."""

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion

from routectl.review.effects import TableDiff, compare, empty_table
from routectl.review.markdown import percent, render_markdown
from routectl.table import RoutingTable

from .conftest import BASE_YAML, build, variant

NEW_COLLECTION = """
  cheap:
    display_name: Cheap
    description: Cheapest first.
    scope: system
    strategy: cost_optimized
    members:
      - {model: openai/gpt-a}
      - {model: openai/gpt-b}
"""

CHANGES: dict[str, tuple[tuple[str, str], ...]] = {
    "weights": (
        ("- {model: echo/echo-1, weight: 0.5}", "- {model: echo/echo-1, weight: 0.7}"),
        ("- {model: echo/echo-mini, weight: 0.5}", "- {model: echo/echo-mini, weight: 0.3}"),
    ),
    "member_added": (
        (
            "      - {model: openai/gpt-a, priority: 10}\n",
            "      - {model: openai/gpt-a, priority: 10}\n      - {model: openai/gpt-b, priority: 5}\n",
        ),
    ),
    "member_removed": (
        (
            "      - {model: team/echo/echo-1}\n      - {model: echo/echo-mini}\n",
            "      - {model: team/echo/echo-1}\n",
        ),
    ),
    "member_deactivated_below_min": (
        (
            "- {model: echo/echo-mini, weight: 0.5}",
            "- {model: echo/echo-mini, weight: 0.5, active: false}",
        ),
    ),
    "collection_added": (("collections:\n", "collections:" + NEW_COLLECTION),),
    "collection_removed": ((BASE_YAML[BASE_YAML.index("  ann-only:") :], ""),),
    "strategy": (("    strategy: fallback\n", "    strategy: round_robin\n"),),
    "organization_member_removed": (("members: [ann, bob]", "members: [ann]"),),
    "connection_priority": (
        (
            "    models: [openai/gpt-a, openai/gpt-b]\n    credentials: {api_key_env: REVIEW_TEST_PLATFORM_KEY}\n",
            "    models: [openai/gpt-a, openai/gpt-b]\n    credentials: {api_key_env: REVIEW_TEST_PLATFORM_KEY}\n    priority: 90\n",
        ),
    ),
    "falls_to_platform": (
        (
            "      - {model: echo/echo-1, priority: 0}\n",
            "      - {model: echo/echo-mini, priority: 0}\n",
        ),
    ),
    "capability_lost": (
        (
            "- {model: openai/gpt-a, priority: 10}",
            "- {model: openai/gpt-a, priority: 10, active: false}",
        ),
    ),
    "user_added": (
        ("members: [ann, bob]", "members: [ann, bob, dan]"),
        (
            "  cid:\n",
            '  dan:\n    display_name: Dan\n    api_keys: ["sha256:' + "d" * 64 + '"]\n  cid:\n',
        ),
    ),
    "comment_only": (("# Bearer keys", "# A comment changed. Bearer keys"),),
    "key_revoked": (
        (
            'api_keys: ["sha256:64ec5cdada3adec9d06609809dc424f4ee1d50b411f6f9b7c0d0eefd9906fb14"]',
            "api_keys: []",
        ),
    ),
    "model_and_defaults": (
        ("    context_window: 32768\n", "    context_window: 1000\n"),
        ("version: 1\n", "version: 1\ndefaults: {cooldown_s: 300, allowed_fails: 1}\n"),
    ),
}


def _diff(name: str, base: RoutingTable) -> TableDiff:
    return compare(base, build(variant(*CHANGES[name])))


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_markdown(name: str, base_table: RoutingTable, snapshot: SnapshotAssertion) -> None:
    assert render_markdown(_diff(name, base_table)) == snapshot


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_json(name: str, base_table: RoutingTable, snapshot: SnapshotAssertion) -> None:
    assert _diff(name, base_table).to_data() == snapshot


def test_weight_change_moves_shares_from_50_to_70(base_table: RoutingTable) -> None:
    # checked by hand: 0.5/0.5 normalizes to 50%/50%, 0.7/0.3 to 70%/30%
    diff = _diff("weights", base_table)
    (traffic,) = diff.traffic
    shares = {m.member: (m.share_before, m.share_after) for m in traffic.members}
    assert shares["echo/echo-1"] == pytest.approx((0.5, 0.7))
    assert shares["echo/echo-mini"] == pytest.approx((0.5, 0.3))
    text = render_markdown(diff)
    assert "| `echo/echo-1` | 50% | 70% | weight 0.5 -> 0.7 |" in text
    assert "| `echo/echo-mini` | 50% | 30% | weight 0.5 -> 0.3 |" in text
    assert "bar [50, 70, 50, 30]" in text


def test_first_choice_strategies_give_the_first_member_everything(base_table: RoutingTable) -> None:
    diff = _diff("strategy", base_table)
    (traffic,) = diff.traffic
    assert [(m.share_before, m.share_after) for m in traffic.members] == [(1.0, 0.5), (0.0, 0.5)]
    assert traffic.basis_before == "first_choice"
    assert "the first choice takes 100% in the steady state" in render_markdown(diff)


def test_removing_an_org_member_shows_who_loses_what(base_table: RoutingTable) -> None:
    diff = _diff("organization_member_removed", base_table)
    bob = next(a for a in diff.access if a.subject == "bob")
    assert bob.lost == ("collection/team-pool", "team/*")
    assert bob.left == ("team",)
    assert ("bob", "openai/gpt-a", "team-openai", "platform-openai") in {
        (f.user, f.model, f.before, f.after) for f in diff.first_choices
    }


def test_no_change_is_empty(base_table: RoutingTable) -> None:
    diff = _diff("comment_only", base_table)
    assert diff.is_empty()
    assert "No routing effect." in render_markdown(diff)


def test_first_commit_adds_everything(base_table: RoutingTable) -> None:
    diff = compare(empty_table(), base_table)
    assert {c.name for c in diff.collections} == set(base_table.collections)
    assert all(c.change == "added" for c in diff.collections)


@pytest.mark.parametrize(
    ("share", "text"), [(0.7, "70%"), (1 / 3, "33.3%"), (0.0, "0%"), (None, "—"), (1.0, "100%")]
)
def test_percent(share: float | None, text: str) -> None:
    assert percent(share) == text


def test_a_revoked_last_key_loses_the_user_everything(base_table: RoutingTable) -> None:
    diff = _diff("key_revoked", base_table)
    cid = next(a for a in diff.access if a.subject == "cid")
    assert "collection/split" in cid.lost and "openai/gpt-a" in cid.lost
    assert not cid.gained
    (keys,) = [o for o in diff.others if o.setting == "api_keys"]
    assert (keys.subject, keys.before, keys.after) == ("user cid", ["sha256:64ec5cdada3a…"], [])


def test_context_window_and_defaults_are_routing_effects(base_table: RoutingTable) -> None:
    diff = _diff("model_and_defaults", base_table)
    assert not diff.is_empty()
    changes = {(o.subject, o.setting): (o.before, o.after) for o in diff.others}
    assert changes[("model echo/echo-1", "context_window")] == (32768, 1000)
    assert changes[("defaults", "cooldown_s")] == (30.0, 300.0)
    assert changes[("defaults", "allowed_fails")] == (3, 1)
    assert "- model echo/echo-1 `context_window`: `32768` → `1000`" in render_markdown(diff)


def test_a_collection_that_improves_but_stays_below_its_minimum_is_not_a_new_warning(
    base_table: RoutingTable,
) -> None:
    # split: 2 active of min 2 -> deactivate both (0 of 2): a new warning
    both_off = variant(
        (
            "- {model: echo/echo-1, weight: 0.5}",
            "- {model: echo/echo-1, weight: 0.5, active: false}",
        ),
        (
            "- {model: echo/echo-mini, weight: 0.5}",
            "- {model: echo/echo-mini, weight: 0.5, active: false}",
        ),
    )
    one_off = variant(
        (
            "- {model: echo/echo-mini, weight: 0.5}",
            "- {model: echo/echo-mini, weight: 0.5, active: false}",
        ),
    )
    worse = compare(base_table, build(both_off))
    assert "below_min_models" in [w.kind for w in worse.warnings]
    better = compare(build(both_off), build(one_off))  # 0 of 2 -> 1 of 2: still below, but better
    assert "below_min_models" not in [w.kind for w in better.warnings]


def test_no_base_config_warns_no_new_user(base_table: RoutingTable) -> None:
    diff = compare(empty_table(), base_table)
    assert [w for w in diff.warnings if w.kind == "falls_to_platform_keys"] == []
