"""CLI commands: db (apply the generated migrations with psycopg; report where a database is)."""

from __future__ import annotations

from pathlib import Path

import click

_URL = click.option(
    "--database-url",
    envvar="DATABASE_URL",
    required=True,
    help="libpq URL or conninfo (default: $DATABASE_URL).",
)
_OUT = click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("generated"),
    show_default=True,
    help="The folder `routectl compile` writes.",
)


@click.group("db")
def db_group() -> None:
    """Apply generated/ SQL to PostgreSQL."""


@db_group.command("apply")
@_URL
@_OUT
def apply_command(database_url: str, out_dir: Path) -> None:
    """Apply the pending migrations in order, each in its own transaction."""
    import psycopg

    from routectl.compiler.db.apply import ApplyError, apply_pending

    try:
        apply_pending(database_url, out_dir, echo=click.echo)
    except (ApplyError, psycopg.OperationalError) as exc:
        raise click.ClickException(str(exc).strip()) from exc


@db_group.command("status")
@_URL
@_OUT
def status_command(database_url: str, out_dir: Path) -> None:
    """Show which routing table the database holds and which migrations are pending."""
    import psycopg

    from routectl.compiler.db.apply import (
        ApplyError,
        database_state,
        pending_migrations,
        read_chain,
    )

    try:
        chain = read_chain(out_dir)
        with psycopg.connect(database_url, autocommit=True) as conn:
            state = database_state(conn)
        if state is None:
            click.echo("database: empty (no routing_migrations rows)")
        else:
            click.echo(f"database: routing table {state.to_hash} ({state.kind} {state.name})")
        todo = pending_migrations(chain, state)
    except (ApplyError, psycopg.OperationalError) as exc:
        raise click.ClickException(str(exc).strip()) from exc
    if chain:
        click.echo(f"generated: routing table {chain[-1].to_hash} ({chain[-1].name})")
    if not todo:
        click.echo("up to date")
        return
    click.echo(f"{len(todo)} pending:")
    for migration in todo:
        click.echo(f"  {migration.name}")


def register(group: click.Group) -> None:
    """Attach this area's commands."""
    group.add_command(db_group)
