"""`routectl diff` on the command line: --old, --base against a real git repository, exit codes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from routectl.cli import main

from .conftest import BASE_YAML, variant

WEIGHTS = (
    ("- {model: echo/echo-1, weight: 0.5}", "- {model: echo/echo-1, weight: 0.7}"),
    ("- {model: echo/echo-mini, weight: 0.5}", "- {model: echo/echo-mini, weight: 0.3}"),
)


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return proc.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose first commit has base.yaml as config/routing.yaml."""
    root = tmp_path / "repo"
    (root / "config").mkdir(parents=True)
    _git(root, "init", "-q", "-b", "main")
    (root / "config" / "routing.yaml").write_text(BASE_YAML, encoding="utf-8")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "base")
    return root


def test_old_file_markdown_and_exit_code(write_config: Callable[..., Path]) -> None:
    old = write_config(BASE_YAML, "old.yaml")
    new = write_config(variant(*WEIGHTS), "new.yaml")
    runner = CliRunner()
    result = runner.invoke(main, ["diff", str(new), "--old", str(old)])
    assert result.exit_code == 0, result.output
    assert "| `echo/echo-1` | 50% | 70% | weight 0.5 -> 0.7 |" in result.output
    result = runner.invoke(main, ["diff", str(new), "--old", str(old), "--exit-code"])
    assert result.exit_code == 1
    same = runner.invoke(main, ["diff", str(old), "--old", str(old), "--exit-code"])
    assert same.exit_code == 0
    assert "No routing effect." in same.output


def test_json_format_is_the_same_effects(write_config: Callable[..., Path]) -> None:
    old = write_config(BASE_YAML, "old.yaml")
    new = write_config(variant(*WEIGHTS), "new.yaml")
    result = CliRunner().invoke(main, ["diff", str(new), "--old", str(old), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    (traffic,) = data["traffic"]
    assert [(m["member"], m["share_before"], m["share_after"]) for m in traffic["members"]] == [
        ("echo/echo-1", 0.5, 0.7),
        ("echo/echo-mini", 0.5, 0.3),
    ]
    assert data["empty"] is False


def test_base_reads_the_committed_config_without_checkout(repo: Path) -> None:
    config = repo / "config" / "routing.yaml"
    config.write_text(variant(*WEIGHTS), encoding="utf-8")
    head = _git(repo, "rev-parse", "HEAD").strip()
    # run from elsewhere: the ref is read relative to the config's own directory
    result = subprocess.run(
        [
            str(Path(__file__).parents[2] / ".venv/bin/routectl"),
            "diff",
            str(config),
            "--base",
            "main",
        ],
        cwd=repo.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "| `echo/echo-1` | 50% | 70% |" in result.stdout
    # the working tree was not touched
    assert _git(repo, "rev-parse", "HEAD").strip() == head
    assert _git(repo, "status", "--porcelain").strip() == "M config/routing.yaml"


def test_default_base_is_head(repo: Path) -> None:
    config = repo / "config" / "routing.yaml"
    runner = CliRunner()
    clean = runner.invoke(main, ["diff", str(config), "--exit-code"])
    assert clean.exit_code == 0, clean.output
    config.write_text(variant(("members: [ann, bob]", "members: [ann]")), encoding="utf-8")
    changed = runner.invoke(main, ["diff", str(config), "--exit-code"])
    assert changed.exit_code == 1
    assert "| user `bob` |  | `collection/team-pool`, `team/*` | leaves `team` |" in changed.output


def test_a_config_new_at_head_is_all_added(repo: Path) -> None:
    other = repo / "config" / "other.yaml"
    other.write_text(BASE_YAML, encoding="utf-8")
    result = CliRunner().invoke(main, ["diff", str(other), "--base", "HEAD"])
    assert result.exit_code == 0, result.output
    assert "- added `collection/split`" in result.output


def test_base_reads_a_committed_compiled_table_as_a_table(repo: Path) -> None:
    runner = CliRunner()
    gen = repo / "generated"
    config = repo / "config" / "routing.yaml"
    assert runner.invoke(main, ["compile", str(config), "--out", str(gen)]).exit_code == 0
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "compiled")
    config.write_text(variant(*WEIGHTS), encoding="utf-8")
    assert runner.invoke(main, ["compile", str(config), "--out", str(gen)]).exit_code == 0
    result = runner.invoke(main, ["diff", str(gen / "routing_table.json"), "--base", "HEAD"])
    assert result.exit_code == 0, result.output
    assert "| `echo/echo-1` | 50% | 70% |" in result.output


def test_unknown_ref_is_a_usage_error(repo: Path) -> None:
    result = CliRunner().invoke(
        main, ["diff", str(repo / "config" / "routing.yaml"), "--base", "nope"]
    )
    assert result.exit_code == 2
    assert "cannot read git ref 'nope'" in result.output


def test_invalid_config_exits_1(write_config: Callable[..., Path]) -> None:
    old = write_config(BASE_YAML, "old.yaml")
    bad = write_config(variant(("strategy: weighted", "strategy: sideways")), "bad.yaml")
    result = CliRunner().invoke(main, ["diff", str(bad), "--old", str(old)])
    assert result.exit_code == 1
    assert "bad.yaml:" in result.output
