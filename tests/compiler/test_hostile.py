"""Issue 13's compiler findings: a hostile routing.yaml or generated/ gives diagnostics, never a
traceback or a hang, and compile writes generated/ as one unit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from routectl.cli import main
from routectl.compiler.build import analyze

MAX_ALIAS_EXPANSION, MAX_DEPTH = (
    100_000,
    64,
)  # the loader's bounds (literal: this file runs on old code too)

REPO = Path(__file__).resolve().parents[2]
BASE = (REPO / "routing.yaml").read_text()

# 342 bytes; fully expanded, 9**9 (387 million) strings
ALIAS_BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_a_100000_digit_integer_is_a_diagnostic() -> None:
    text = BASE.replace("trust_level: 90", "trust_level: " + "9" * 100_000, 1)
    config, diagnostics = analyze(text)
    assert config is None
    assert [d.format() for d in diagnostics] == [
        "routing.yaml:51:18: error: models.openai/gpt-4o.trust_level: "
        "integer of 100000 characters is too large"
    ]


@pytest.mark.parametrize("style", ["flow", "block"])
def test_metadata_nested_300_deep_is_a_diagnostic(style: str) -> None:
    if style == "flow":
        nested = "{a: " * 300 + "1" + "}" * 300
    else:
        nested = "\n" + "\n".join("  " * (i + 3) + "a:" for i in range(300)) + " 1"
    text = BASE.replace(
        "    strategy: random\n", f"    strategy: random\n    metadata: {nested}\n", 1
    )
    config, diagnostics = analyze(text)
    assert config is None
    assert len(diagnostics) == 1
    assert diagnostics[0].message == f"nested deeper than {MAX_DEPTH} levels"
    assert diagnostics[0].path.startswith("collections.auto-free.metadata.a.a")


def test_metadata_nested_within_the_bound_compiles() -> None:
    nested = "{a: " * 50 + "1" + "}" * 50
    text = BASE.replace(
        "    strategy: random\n", f"    strategy: random\n    metadata: {nested}\n", 1
    )
    config, diagnostics = analyze(text)
    assert diagnostics == []
    assert config is not None


def test_an_alias_bomb_is_a_diagnostic_at_the_alias_in_bounded_time() -> None:
    started = time.monotonic()
    config, diagnostics = analyze(ALIAS_BOMB)
    elapsed = time.monotonic() - started
    assert config is None
    assert [d.format() for d in diagnostics] == [
        f"routing.yaml:6:4: error: f: YAML aliases here expand to more than "
        f"{MAX_ALIAS_EXPANSION} values (an alias bomb?); write the values out"
    ]
    assert elapsed < 30  # a sanity bound: before the fix this never finished


def test_a_few_aliases_are_still_fine() -> None:
    text = BASE.replace("  max_attempts: 3\n", "  max_attempts: &three 3\n", 1).replace(
        "  allowed_fails: 3\n", "  allowed_fails: *three\n", 1
    )
    config, diagnostics = analyze(text)
    assert diagnostics == []
    assert config is not None


def test_validate_of_an_alias_bomb_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    result = run("validate", str(path))
    assert result.exit_code == 1
    assert f"{path}:6:4: error: f: YAML aliases here expand" in result.stderr


def test_seed_sql_being_a_folder_is_an_error_not_a_traceback(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    (project / "generated" / "seed.sql").mkdir(parents=True)
    result = run("compile")
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "generated/seed.sql is a folder where compile writes a file" in result.stderr
    assert sorted(p.name for p in (project / "generated").iterdir()) == ["seed.sql"]
    check = run("check")
    assert check.exit_code == 1
    assert "not a file: generated/seed.sql" in check.stderr


def test_check_names_stray_files(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    assert run("compile").exit_code == 0
    assert run("check").exit_code == 0
    (project / "generated" / ".seed.sql.x1y2.tmp").write_text("half a file")
    (project / "generated" / "migrations" / "notes.txt").write_text("by hand")
    result = run("check")
    assert result.exit_code == 1
    assert "stray (compile does not write it): generated/.seed.sql.x1y2.tmp" in result.stderr
    assert "stray (compile does not write it): generated/migrations/notes.txt" in result.stderr
    # compile drops its own leftover temporary file and keeps what a person put there
    (project / "routing.yaml").write_text(BASE.replace("cooldown_s: 30", "cooldown_s: 31"))
    assert run("compile").exit_code == 0
    assert not (project / "generated" / ".seed.sql.x1y2.tmp").exists()
    assert (project / "generated" / "migrations" / "notes.txt").read_text() == "by hand"


_KILLER = """
import os, signal, sys
import routectl.compiler.output_dir as out
real = out._write
count = 0
kill_at = int(sys.argv[1])
def write(path, content):
    global count
    real(path, content)
    count += 1
    if count == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)  # a kill in the middle of writing generated/
out._write = write
from routectl.cli import main
sys.argv = ["routectl", "compile"]
main()
"""


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("after", [1, 2])
def test_a_kill_mid_compile_leaves_the_old_generated_folder(
    project: Path, after: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    assert run("compile").exit_code == 0
    before = {
        p.relative_to(project).as_posix(): p.read_bytes()
        for p in sorted((project / "generated").rglob("*"))
        if p.is_file()
    }
    (project / "routing.yaml").write_text(BASE.replace("cooldown_s: 30", "cooldown_s: 31"))
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, str(after)],
        cwd=project,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    after_kill = {
        p.relative_to(project).as_posix(): p.read_bytes()
        for p in sorted((project / "generated").rglob("*"))
        if p.is_file()
    }
    assert after_kill == before  # no new migration beside the old table, no .tmp
    check = run("check")
    assert check.exit_code == 1
    assert "left by an interrupted compile" in check.stderr
    # the next compile clears the leftovers and writes the whole new state
    assert run("compile").exit_code == 0
    assert run("check").exit_code == 0
    assert [p for p in os.listdir(project) if p.startswith(".generated")] == []
