"""PostgreSQL seed and migrations rendered from compiled tables (see the database issue)."""

from __future__ import annotations

from routectl.table import RoutingTable

__all__ = ["sql_outputs", "verify_migrations"]


def sql_outputs(
    previous: RoutingTable | None, new: RoutingTable, existing: dict[str, bytes]
) -> dict[str, bytes]:
    """Files (paths relative to generated/) that compile writes for the database.

    `previous` is the table currently in generated/ (None when there is none), `existing` the
    current files under generated/migrations/ keyed by relative path. Returns seed.sql and,
    when the table changed, the one new migration file.
    """
    return {}


def verify_migrations(existing: dict[str, bytes], table: RoutingTable) -> list[str]:
    """Problems with the migration chain in generated/migrations/ (empty when it is sound)."""
    return []
