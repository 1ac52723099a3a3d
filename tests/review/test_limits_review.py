"""`diff` shows limit changes per caller; `explain` shows the limits a request is checked against."""

from __future__ import annotations

import json

from click.testing import CliRunner

from routectl.cli import main
from routectl.review.effects import compare
from routectl.review.markdown import render_markdown

from .conftest import BASE_YAML, build

LIMITS = """
limits:
  users:
    ann: {requests_per_minute: 60, usd_per_day: 5}
  organizations:
    team: {tokens_per_minute: 100000, fail: closed}
  collections:
    split: {requests_per_minute: 1000}
"""


def test_diff_lists_each_limit_change_per_caller() -> None:
    before = build(BASE_YAML)
    after = build(BASE_YAML + LIMITS)
    diff = compare(before, after)
    rows = {(c.kind, c.subject, c.limit): (c.before, c.after) for c in diff.limits}
    assert rows == {
        ("user", "ann", "requests_per_minute"): (None, 60),
        ("user", "ann", "usd_per_day"): (None, 5.0),
        ("organization", "team", "tokens_per_minute"): (None, 100000),
        ("collection", "split", "requests_per_minute"): (None, 1000),
    }
    markdown = render_markdown(diff)
    assert "### Limits" in markdown and "1 limit change" not in markdown
    assert "| user `ann` | `requests_per_minute` | — | 60 |" in markdown
    assert "| organization `team` | `tokens_per_minute` | — | 100,000 |" in markdown
    # raised, lifted, and the fail mode changed
    changed = build(
        BASE_YAML
        + LIMITS.replace(
            "requests_per_minute: 60, usd_per_day: 5", "requests_per_minute: 120"
        ).replace("fail: closed", "fail: open")
    )
    rows2 = {(c.subject, c.limit): (c.before, c.after) for c in compare(after, changed).limits}
    assert rows2 == {
        ("ann", "requests_per_minute"): (60, 120),
        ("ann", "usd_per_day"): (5.0, None),
        ("team", "fail"): ("closed", "open"),
    }
    assert not compare(after, build(BASE_YAML + LIMITS)).limits  # no change, no row


def test_explain_names_the_limits_that_apply(tmp_path: object) -> None:
    config = f"{tmp_path}/routing.yaml"
    with open(config, "w", encoding="utf-8") as f:
        f.write(BASE_YAML + LIMITS)
    args = ["explain", "collection/split", "--as", "ann", "--config", config]
    data = json.loads(CliRunner().invoke(main, [*args, "--format", "json"]).output)
    assert data["limits"] == [
        {
            "scope": "user",
            "subject": "ann",
            "requests_per_minute": 60,
            "usd_per_day": 5.0,
            "fail": "open",
        },
        {"scope": "organization", "subject": "team", "tokens_per_minute": 100000, "fail": "closed"},
        {"scope": "collection", "subject": "split", "requests_per_minute": 1000, "fail": "open"},
    ]
    text = CliRunner().invoke(main, args).output
    assert "  - user ann: 60 requests/min, $5.00/day (fail open)" in text
    assert "  - organization team: 100,000 tokens/min (fail closed)" in text
    other = json.loads(
        CliRunner()
        .invoke(
            main, ["explain", "echo/echo-1", "--as", "cid", "--config", config, "--format", "json"]
        )
        .output
    )
    assert other["limits"] == []
