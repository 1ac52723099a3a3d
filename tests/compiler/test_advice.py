"""Warnings: a valid config that is probably not what was meant is reported, never refused."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from routectl.cli import main
from routectl.compiler import build_table, validate_config
from routectl.errors import Diagnostic

BASE = (
    Path(__file__).resolve().parents[1] / "fixtures" / "valid" / "minimal_base.yaml"
).read_text()
# a system collection whose one member pins acme's connection: carol (in no organization)
# may use none of its members and gets 403 access_denied from it
SHUT_OUT = BASE.replace(
    "    credentials: {api_key_env: ALICE_OPENAI_KEY}\n",
    "    credentials: {api_key_env: ALICE_OPENAI_KEY}\n"
    "  - id: acme-openai\n    owner: acme\n    provider: openai\n    models: [openai/gpt-4o]\n"
    "    credentials: {api_key_env: ACME_OPENAI_KEY}\n",
).replace(
    "users:\n",
    'users:\n  carol:\n    api_keys: ["sha256:' + "c" * 64 + '"]\n',
) + (
    "  acme-pool:\n    scope: system\n    strategy: priority\n"
    "    members:\n      - {model: acme/openai/gpt-4o}\n"
)


def test_a_system_collection_some_users_can_never_use_is_a_warning() -> None:
    warnings: list[Diagnostic] = []
    build_table(text=SHUT_OUT, warnings=warnings)  # valid: compiles
    assert validate_config(text=SHUT_OUT) == []  # and no error
    [warning] = warnings
    assert warning.severity == "warning" and warning.path == "collections.acme-pool"
    assert warning.format().startswith("routing.yaml:")
    assert ": warning: collections.acme-pool: users carol may use no active member" in (
        warning.format()
    )
    assert "403 access_denied" in warning.message
    none: list[Diagnostic] = []
    build_table(text=BASE, warnings=none)
    assert none == []  # auto-free (echo, platform) serves everyone


def test_validate_and_compile_print_warnings_and_succeed(tmp_path: Path) -> None:
    config = tmp_path / "routing.yaml"
    config.write_text(SHUT_OUT)
    runner = CliRunner()
    result = runner.invoke(main, ["validate", str(config)])
    assert result.exit_code == 0
    assert "1 warning" in result.stdout
    assert f"{config}:" in result.stderr and ": warning: collections.acme-pool:" in result.stderr
    result = runner.invoke(main, ["compile", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0 and ": warning: collections.acme-pool:" in result.stderr
    assert (tmp_path / "out" / "routing_table.json").exists()
