"""Review-tool fixtures: the base config of tests/review/fixtures and variants of it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from routectl.compiler import build_table
from routectl.table import RoutingTable

FIXTURES = Path(__file__).parent / "fixtures"
BASE_YAML = (FIXTURES / "base.yaml").read_text(encoding="utf-8")
KEYS = {"ann": "rk-test-ann", "bob": "rk-test-bob", "cid": "rk-test-cid"}
# every key env var of base.yaml set: the fake upstream accepts any key
ENV = {
    "REVIEW_TEST_ANN_KEY": "sk-ann",
    "REVIEW_TEST_TEAM_KEY": "sk-team",
    "REVIEW_TEST_PLATFORM_KEY": "sk-platform",
}


def variant(*edits: tuple[str, str], text: str = BASE_YAML) -> str:
    """base.yaml with each (old, new) replaced exactly once: a failed edit fails the test."""
    for old, new in edits:
        assert text.count(old) == 1, f"edit target not unique in base.yaml: {old!r}"
        text = text.replace(old, new)
    return text


def build(text: str) -> RoutingTable:
    """Compile config text."""
    return build_table("routing.yaml", text=text)


@pytest.fixture(scope="session")
def base_table() -> RoutingTable:
    return build(BASE_YAML)


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(text: str, name: str = "routing.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
