"""Writing request_logs rows to PostgreSQL: a batch of records is one jsonb parameter (a JSON
array, rows.batch_json) of one INSERT that derives each row (rows.ROW_SQL) and skips every row
whose request id is already there, so a batch written twice (a retry after a timeout whose commit
did land, a spool file loaded again) adds nothing the second time.

One statement and one parameter per batch keeps the gateway's share small: no per-row Python (no
COPY write_row, no per-record encoding), one round trip plus the commit. PostgreSQL parses the
array and derives the columns."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from routectl.requestlogs.rows import COLUMNS, ROW_SQL

__all__ = ["RequestLogDatabase", "connect"]

_COLS = ", ".join(COLUMNS)
# bytes with a $1 placeholder, for a RawCursor: the statement is long, and psycopg would otherwise
# parse it and encode it anew at each batch; psycopg prepares it after a few batches, after which
# the server does not parse it either
_INSERT = (
    f"INSERT INTO request_logs ({_COLS}) SELECT "
    + ", ".join(ROW_SQL[c] for c in COLUMNS)
    + " FROM jsonb_array_elements($1) AS batch(r) ON CONFLICT DO NOTHING"
).encode()


def _as_is(payload: bytes) -> bytes:
    return payload  # already JSON (rows.batch_json)


def connect(
    url: str, *, timeout_s: float = 5.0, application: str = "routectl"
) -> psycopg.Connection[Any]:
    """A connection that fails fast: `timeout_s` to connect, and statements cut by the server
    after twice that (a database that is slow counts as away)."""
    return psycopg.connect(
        url,
        autocommit=False,
        connect_timeout=max(1, round(timeout_s)),
        application_name=application,
        options=f"-c statement_timeout={round(timeout_s * 2000)}",
    )


class RequestLogDatabase:
    """One connection's worth of request_logs writing (not thread-safe: one writer each)."""

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.conn: psycopg.Connection[Any] | None = None

    def write(self, batch: bytes) -> int:
        """Write the rows of a batch of records (a JSON array of them, rows.batch_json) in one
        transaction; the number that were new. Raises psycopg.Error (or OSError) when the
        database is away, slow, or refuses them; the connection is then dropped."""
        try:
            with self._watchdog():
                conn = self._connection()
                with psycopg.RawCursor(conn) as cur:
                    cur.execute(_INSERT, (Jsonb(batch, dumps=_as_is),))
                    inserted = cur.rowcount
                conn.commit()
            return max(inserted, 0)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Drop the connection (the next write opens a new one)."""
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _connection(self) -> psycopg.Connection[Any]:
        if self.conn is None or self.conn.closed:
            self.conn = connect(self.url, timeout_s=self.timeout_s)
        return self.conn

    @contextlib.contextmanager
    def _watchdog(self) -> Iterator[None]:
        """A server that stopped answering (a stopped process, a dead link) leaves a socket read
        waiting forever: after 3 x timeout_s the socket is shut down under it, which ends the
        wait with an error."""
        done = threading.Event()

        def cut() -> None:
            if done.wait(self.timeout_s * 3):
                return
            conn = self.conn
            if conn is None:
                return
            with contextlib.suppress(Exception):
                fd = os.dup(conn.pgconn.socket)
                with socket.socket(fileno=fd) as sock:
                    sock.shutdown(socket.SHUT_RDWR)

        guard = threading.Thread(target=cut, name="routectl-request-logs-watchdog", daemon=True)
        guard.start()
        try:
            yield
        finally:
            done.set()
            guard.join()
