"""CLI commands: logs (request_logs in PostgreSQL: load access logs, prune old rows)."""

from __future__ import annotations

import click

_URL = click.option(
    "--database-url",
    envvar=["ROUTECTL_LOG_DATABASE_URL", "DATABASE_URL"],
    required=True,
    help="libpq URL or conninfo of the database holding request_logs "
    "(default: $ROUTECTL_LOG_DATABASE_URL, else $DATABASE_URL).",
)


@click.group("logs")
def logs_group() -> None:
    """request_logs in PostgreSQL: load access logs into it, prune it."""


@logs_group.command("load")
@_URL
@click.argument("files", nargs=-1, required=True)
def load_command(database_url: str, files: tuple[str, ...]) -> None:
    """Load the access-log lines of FILES (`-`: stdin; `.gz` files too) into request_logs.

    Lines that are not records of routed requests are skipped; a request already in the table
    (same request id) is not added again, so loading a file twice is harmless."""
    import psycopg

    from routectl.requestlogs.load import load_files

    try:
        report = load_files(database_url, files)
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc
    except psycopg.Error as exc:
        raise click.ClickException(f"request_logs: {str(exc).strip()}") from exc
    click.echo(
        f"{report.inserted} rows loaded, {report.duplicates} already there, "
        f"{report.skipped} of {report.lines} lines skipped (not a routed request's record)"
    )


@logs_group.command("prune")
@_URL
@click.option(
    "--older-than",
    required=True,
    help="Delete rows created before this age: 30d, 12h, 90m.",
)
@click.option("--dry-run", is_flag=True, help="Count the rows, delete nothing.")
def prune_command(database_url: str, older_than: str, dry_run: bool) -> None:
    """Delete request_logs rows older than --older-than (in batches, each its own transaction)."""
    import psycopg

    from routectl.requestlogs.prune import parse_age, prune

    try:
        age = parse_age(older_than)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from exc
    try:
        n = prune(database_url, age, dry_run=dry_run)
    except psycopg.Error as exc:
        raise click.ClickException(f"request_logs: {str(exc).strip()}") from exc
    click.echo(f"{n} rows {'would be ' if dry_run else ''}deleted (older than {older_than})")


def register(group: click.Group) -> None:
    """Attach this area's commands."""
    group.add_command(logs_group)
