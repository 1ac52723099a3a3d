"""Every broken config in tests/fixtures/invalid is reported, and reported so a person can fix it."""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from routectl.compiler import build_table, validate_config
from routectl.errors import ConfigError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))


def test_there_are_enough_broken_configs() -> None:
    assert len(INVALID) >= 26


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_config_diagnostics(path: Path, snapshot: SnapshotAssertion) -> None:
    diagnostics = validate_config(path, filename=path.name)
    assert diagnostics, f"{path.name} should be invalid"
    if not path.stem.startswith("many_"):
        assert len(diagnostics) == 1, "each fixture holds exactly one mistake"
    assert diagnostics == sorted(diagnostics)
    assert "\n".join(d.format() for d in diagnostics) + "\n" == snapshot


def test_many_mistakes_are_all_reported_sorted_by_line() -> None:
    path = FIXTURES / "invalid" / "many_mistakes.yaml"
    diagnostics = validate_config(path, filename=path.name)
    assert len(diagnostics) >= 15
    lines = [d.line for d in diagnostics]
    assert lines == sorted(lines)


def test_build_table_raises_with_every_diagnostic() -> None:
    path = FIXTURES / "invalid" / "many_mistakes.yaml"
    with pytest.raises(ConfigError) as info:
        build_table(path, filename=path.name)
    assert info.value.diagnostics == validate_config(path, filename=path.name)
    assert str(info.value).splitlines()[0].startswith("many_mistakes.yaml:2:10: error: version:")


def test_pasted_secret_never_appears_in_diagnostics() -> None:
    for name in ("literal_api_key.yaml", "many_mistakes.yaml"):
        path = FIXTURES / "invalid" / name
        text = "\n".join(d.format() for d in validate_config(path))
        assert "api_key_env" in text
        assert "sk-live" not in text


def test_secret_in_api_key_env_is_not_echoed() -> None:
    base = (FIXTURES / "valid" / "minimal_base.yaml").read_text()
    text = base.replace("api_key_env: ALICE_OPENAI_KEY", "api_key_env: sk-proj-Abc123-secret")
    diagnostics = validate_config(text=text)
    assert len(diagnostics) == 1
    assert "sk-proj" not in diagnostics[0].format()
    assert diagnostics[0].path == "connections[0].credentials.api_key_env"


def test_text_and_filename_are_used_in_memory() -> None:
    diagnostics = validate_config(
        text="version: 1\nusers: {bob: {nick: b}}\n", filename="inline.yaml"
    )
    assert [d.format() for d in diagnostics] == [
        "inline.yaml:2:15: error: users.bob.nick: unknown key 'nick' (allowed: api_keys, display_name)"
    ]


def test_unreadable_file_is_a_diagnostic(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    [d] = validate_config(missing)
    assert "cannot read" in d.message
    with pytest.raises(ConfigError):
        build_table(missing)


def test_empty_file_needs_a_version() -> None:
    [d] = validate_config(text="")
    assert d.message == "must be a mapping, got nothing (null)"


def test_a_key_in_a_base_url_is_not_echoed() -> None:
    base = (FIXTURES / "valid" / "minimal_base.yaml").read_text()
    old = 'base_url: "https://api.openai.com/v1"'
    assert old in base
    for url in ("https://user:sk-proj-Abc123@api.example/v1", "ftp://x/?key=sk-proj-Abc123"):
        diagnostics = validate_config(text=base.replace(old, f'base_url: "{url}"'))
        assert diagnostics and all(d.path.endswith("base_url") for d in diagnostics)
        assert not any("sk-proj" in d.format() for d in diagnostics)
