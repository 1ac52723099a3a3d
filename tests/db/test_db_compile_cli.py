"""`routectl compile` / `routectl check` over a config history: one migration per changing compile."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from routectl.cli import main

from .db_revisions import compile_history, revision_texts


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_compile_writes_one_migration_per_change_and_check_verifies_the_chain(
    tmp_path: Path,
) -> None:
    config, out = tmp_path / "routing.yaml", tmp_path / "generated"
    steps = compile_history()
    for k, text in enumerate(revision_texts()[:5]):
        config.write_text(text)
        code, output = _run("compile", str(config), "--out", str(out))
        assert code == 0, output
        names = sorted(p.stem for p in (out / "migrations").glob("*.sql"))
        assert names == [s.migration_name for s in steps[: k + 1]]
        assert (out / "seed.sql").read_text() == steps[k].seed
        assert _run("check", str(config), "--out", str(out))[0] == 0

    # compiling again without a change writes nothing
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, output = _run("compile", str(config), "--out", str(out))
    assert code == 0 and "up to date" in output
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before

    # a lost migration breaks the chain, and check says which link
    (out / "migrations" / f"{steps[2].migration_name}.sql").unlink()
    code, output = _run("check", str(config), "--out", str(out))
    assert code == 1
    assert f"migrations/{steps[3].migration_name}.sql: numbered 0004, expected 0003" in output
    assert "but the previous migration ends at" in output
