"""`routectl logs prune`: delete request_logs rows older than a retention period, a batch per
transaction (short locks; a prune of months of rows does not hold the table)."""

from __future__ import annotations

import re
from datetime import timedelta

from routectl.requestlogs.database import connect

__all__ = ["parse_age", "prune"]

_AGE = re.compile(r"^\s*(\d+)\s*(d|h|m|days?|hours?|minutes?)\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_BATCH = 10_000


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m` (or `30 days`) as a timedelta; ValueError otherwise."""
    match = _AGE.match(text.lower())
    if match is None:
        raise ValueError(f"{text!r} is not an age like 30d, 12h or 90m")
    amount, unit = int(match.group(1)), _UNITS[match.group(2)[0]]
    return timedelta(**{unit: amount})


def prune(url: str, older_than: timedelta, *, dry_run: bool = False) -> int:
    """Delete (or with dry_run, count) the rows created more than `older_than` ago."""
    with connect(url, timeout_s=30.0) as conn:
        conn.autocommit = True
        if dry_run:
            row = conn.execute(
                "SELECT count(*) FROM request_logs WHERE created_at < now() - %s", (older_than,)
            ).fetchone()
            return int(row[0]) if row else 0
        total = 0
        while True:
            cur = conn.execute(
                "DELETE FROM request_logs WHERE id IN (SELECT id FROM request_logs"
                " WHERE created_at < now() - %s LIMIT %s)",
                (older_than, _BATCH),
            )
            total += max(cur.rowcount, 0)
            if cur.rowcount < _BATCH:
                return total
