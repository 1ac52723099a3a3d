"""Shared fixtures of the compiler tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A scratch directory holding a copy of the repo's routing.yaml."""
    (tmp_path / "routing.yaml").write_bytes((REPO / "routing.yaml").read_bytes())
    return tmp_path
