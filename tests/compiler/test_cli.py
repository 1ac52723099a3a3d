"""The compiler's commands end to end: exit codes, what is written, what check catches."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from routectl.cli import main
from routectl.table import TableError, load_table

REPO = Path(__file__).resolve().parents[2]
INVALID = REPO / "tests" / "fixtures" / "invalid"


def run(*args: str, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


def snapshot_dir(path: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(path)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_validate_ok(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    result = run("validate")  # CONFIG defaults to ./routing.yaml
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("routing.yaml: ok (8 collections")


def test_validate_reports_every_problem_on_stderr() -> None:
    path = INVALID / "many_mistakes.yaml"
    result = run("validate", str(path))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{path}:2:10: error: version:")
    assert lines[-1].endswith("is invalid")
    assert len(lines) >= 16
    assert result.stdout == ""


def test_usage_errors_exit_2(project: Path) -> None:
    assert run("compile", "--no-such-flag").exit_code == 2
    assert run("validate", "a.yaml", "b.yaml").exit_code == 2


def test_compile_writes_then_writes_nothing_new(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    first = run("compile")
    assert first.exit_code == 0, first.output
    assert "wrote generated/routing_table.json" in first.stdout
    table = load_table(project / "generated" / "routing_table.json")
    assert table.sha256 in first.stdout
    before = snapshot_dir(project / "generated")
    second = run("compile")
    assert second.exit_code == 0
    assert "wrote" not in second.stdout
    assert "up to date" in second.stdout
    assert snapshot_dir(project / "generated") == before  # same bytes, same mtimes


def test_compile_custom_out_and_config(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(
        "compile", str(REPO / "tests" / "fixtures" / "valid" / "echo_only.yaml"), "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert load_table(out / "routing_table.json").collections["default"].strategy == "priority"


def test_invalid_config_writes_nothing(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    assert run("compile").exit_code == 0
    before = snapshot_dir(project / "generated")
    routing = project / "routing.yaml"
    routing.write_text(routing.read_text().replace("weight: 0.7", "weight: 7"))
    result = run("compile")
    assert result.exit_code == 1
    assert (
        "collections.ab-test.members[0].weight: must be between 0.001 and 1.0, got 7"
        in result.stderr
    )
    assert "nothing written" in result.stderr
    assert snapshot_dir(project / "generated") == before


def test_invalid_config_creates_no_output_dir(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    result = run("compile", str(INVALID / "weight_zero.yaml"), "--out", str(out))
    assert result.exit_code == 1
    assert not out.exists()


def test_check_passes_right_after_compile(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    assert run("check").exit_code == 1  # nothing generated yet
    assert run("compile").exit_code == 0
    result = run("check")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout


def test_check_fails_when_routing_yaml_changed(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    assert run("compile").exit_code == 0
    routing = project / "routing.yaml"
    routing.write_text(routing.read_text().replace("timeout_ms: 30000", "timeout_ms: 31000"))
    result = run("check")
    assert result.exit_code == 1
    assert "differs: generated/routing_table.json" in result.stderr
    assert "run `routectl compile`" in result.stderr
    # compile brings it back in line
    assert run("compile").exit_code == 0
    assert run("check").exit_code == 0


def test_check_fails_after_hand_edit(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    assert run("compile").exit_code == 0
    table_file = project / "generated" / "routing_table.json"
    table_file.write_text(table_file.read_text().replace('"weight": 0.7', '"weight": 0.9'))
    result = run("check")
    assert result.exit_code == 1
    assert "differs: generated/routing_table.json" in result.stderr
    with pytest.raises(TableError, match="edited by hand"):
        load_table(table_file)


def test_a_hand_edited_migration_fails_check_and_stops_compile(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    assert run("compile").exit_code == 0
    migration = project / "generated" / "migrations" / "0001_initial.sql"
    original = migration.read_text()
    migration.write_text(original.replace("COMMIT;", "DELETE FROM organizations;\nCOMMIT;"))
    result = run("check")
    assert result.exit_code == 1
    assert "0001_initial.sql: edited after it was generated" in result.stderr
    # compile adds nothing to a chain it cannot trust, and leaves every file as it was
    routing = project / "routing.yaml"
    routing.write_text(routing.read_text().replace("timeout_ms: 30000", "timeout_ms: 31000"))
    table_before = (project / "generated" / "routing_table.json").read_bytes()
    result = run("compile")
    assert result.exit_code == 1
    assert "edited after it was generated" in result.stderr
    assert (project / "generated" / "routing_table.json").read_bytes() == table_before
    assert sorted(p.name for p in migration.parent.iterdir()) == ["0001_initial.sql"]
    migration.write_text(original)  # restored from version control: compile goes on
    assert run("compile").exit_code == 0
    assert run("check").exit_code == 0


def test_compile_warns_when_it_must_resync(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    assert run("compile").exit_code == 0
    (project / "generated" / "routing_table.json").unlink()
    routing = project / "routing.yaml"
    routing.write_text(routing.read_text().replace("timeout_ms: 30000", "timeout_ms: 31000"))
    result = run("compile")
    assert result.exit_code == 0
    assert "migrations/0002_resync.sql resynchronises the whole state" in result.stderr


def test_check_names_a_missing_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    assert run("compile").exit_code == 0
    (project / "generated" / "routing_table.json").unlink()
    result = run("check")
    assert result.exit_code == 1
    assert "missing: generated/routing_table.json" in result.stderr


def test_check_invalid_config_exits_1(tmp_path: Path) -> None:
    result = run("check", str(INVALID / "unknown_strategy.yaml"), "--out", str(tmp_path))
    assert result.exit_code == 1
    assert "collections.team.strategy" in result.stderr


def test_hash_key_matches_the_demo_digest() -> None:
    result = run("hash-key", stdin=b"rk-demo-john-dev\n")
    assert result.exit_code == 0
    expected = "sha256:" + hashlib.sha256(b"rk-demo-john-dev").hexdigest()
    assert result.stdout == expected + "\n"
    assert expected in (REPO / "routing.yaml").read_text()
    # only the trailing newline is stripped
    assert (
        run("hash-key", stdin=b"k \n").stdout.strip()
        == "sha256:" + hashlib.sha256(b"k ").hexdigest()
    )
    assert (
        run("hash-key", stdin=b"key").stdout.strip()
        == "sha256:" + hashlib.sha256(b"key").hexdigest()
    )


def test_hash_key_without_input_is_a_usage_error() -> None:
    assert run("hash-key", stdin=b"").exit_code == 2


def test_repo_generated_dir_is_current() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from routectl.cli import main; main()", "check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_compile_is_byte_identical_across_processes_and_hash_seeds(tmp_path: Path) -> None:
    outputs = []
    for seed in ("1", "4242"):
        out = tmp_path / f"out-{seed}"
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from routectl.cli import main; main()",
                "compile",
                str(REPO / "routing.yaml"),
                "--out",
                str(out),
            ],
            check=True,
            capture_output=True,
            timeout=120,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        outputs.append(
            {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
        )
    assert "routing_table.json" in outputs[0]
    assert outputs[0] == outputs[1]
    assert (
        outputs[0]["routing_table.json"] == (REPO / "generated" / "routing_table.json").read_bytes()
    )
