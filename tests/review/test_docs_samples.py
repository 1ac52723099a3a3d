"""The review samples in README.md and docs/review.md are real output of the repo's routing.yaml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from routectl.cli import main

ROOT = Path(__file__).resolve().parents[2]

# The pull request the docs describe, as edits of the repo's routing.yaml.
PR_EDITS = (
    ("members: [john-dev, jane-ops]", "members: [john-dev]"),
    (
        "credentials: {api_key_env: ACME_GROQ_API_KEY}\n    priority: 60",
        "credentials: {api_key_env: ACME_GROQ_API_KEY}\n    priority: 40",
    ),
    (
        "      - {model: openai/gpt-4o}\n"
        "      - {model: anthropic/claude-3-5-sonnet-20241022}\n"
        "      - {model: acme-corp/groq/llama-3.3-70b-versatile}",
        "      - {model: acme-corp/groq/llama-3.3-70b-versatile}",
    ),
    ("{model: echo/echo-1, weight: 0.7}", "{model: echo/echo-1, weight: 0.5}"),
    ("{model: echo/echo-mini, weight: 0.3}", "{model: echo/echo-mini, weight: 0.5}"),
)


def _pasted_diff(doc: Path) -> str:
    found = re.search(r"^````markdown\n(.*?)^````$", doc.read_text(), re.S | re.M)
    assert found is not None, f"{doc.name} has no pasted diff"
    return found.group(1)


@pytest.mark.parametrize("doc", ["README.md", "docs/review.md"])
def test_pasted_diff_is_what_routectl_diff_prints(doc: str, tmp_path: Path) -> None:
    source = (ROOT / "routing.yaml").read_text()
    changed = source
    for old, new in PR_EDITS:
        assert changed.count(old) == 1, f"routing.yaml changed: update the docs' example ({old!r})"
        changed = changed.replace(old, new)
    (tmp_path / "routing.yaml").write_text(source)
    (tmp_path / "routing-pr.yaml").write_text(changed)
    result = CliRunner().invoke(
        main, ["diff", str(tmp_path / "routing-pr.yaml"), "--old", str(tmp_path / "routing.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert result.output == _pasted_diff(ROOT / doc)
