"""CLI commands: serve (the runtime). Composes the app; the process model is runtime/server.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from routectl.runtime.options import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    UPSTREAM_CLIENTS,
)

if TYPE_CHECKING:
    from routectl.runtime.app import Mount
from routectl.table import DEFAULT_TABLE_PATH


def register(group: click.Group) -> None:
    """Attach this area's commands."""

    @group.command()
    @click.option(
        "--table",
        "table_path",
        default=DEFAULT_TABLE_PATH,
        show_default=True,
        envvar="ROUTECTL_TABLE",
        show_envvar=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="The compiled routing table (hash verified).",
    )
    @click.option(
        "--watch",
        is_flag=True,
        help="Reload when the table file, or a symlink it sits behind (a mounted ConfigMap), "
        "changes; checked every second. A bad table is refused and the old one keeps serving.",
    )
    @click.option(
        "--host",
        default="127.0.0.1",
        show_default=True,
        envvar="ROUTECTL_HOST",
        show_envvar=True,
        help="Address to listen on (0.0.0.0 in the container image).",
    )
    @click.option(
        "--port",
        default=8080,
        show_default=True,
        envvar="ROUTECTL_PORT",
        show_envvar=True,
        type=click.IntRange(0, 65535),
    )
    @click.option(
        "--workers",
        default=1,
        show_default=True,
        type=click.IntRange(1, 256),
        help="Processes sharing the port (SO_REUSEPORT); one that dies is replaced.",
    )
    @click.option(
        "--max-body-bytes",
        default=DEFAULT_MAX_BODY_BYTES,
        show_default=True,
        type=click.IntRange(1),
        help="Larger request bodies get 413 request_too_large.",
    )
    @click.option(
        "--drain-seconds",
        default=30,
        show_default=True,
        type=click.IntRange(0),
        help="On SIGTERM, the longest wait for requests in flight (streams included).",
    )
    @click.option(
        "--log-database-url",
        envvar="ROUTECTL_LOG_DATABASE_URL",
        show_envvar=True,
        help="Write a request_logs row per routed request to this PostgreSQL (libpq URL or "
        "conninfo), off the request path; rows spool to local disk while it is away. Needs "
        "psycopg: pip install 'routectl[logs]'. See docs/database.md.",
    )
    @click.option(
        "--log-spool-dir",
        envvar="ROUTECTL_LOG_SPOOL_DIR",
        show_envvar=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Where rows wait while the log database is away  [default: a folder per database "
        "under the temporary directory]",
    )
    @click.option(
        "--log-spool-max-bytes",
        envvar="ROUTECTL_LOG_SPOOL_MAX_BYTES",
        show_envvar=True,
        default=256 * 1024 * 1024,
        show_default=True,
        type=click.IntRange(0),
        help="The spool folder's bound; rows beyond it are dropped (and counted).",
    )
    @click.option(
        "--cors-origin",
        "cors_origins",
        multiple=True,
        metavar="ORIGIN",
        help="Let browser pages of ORIGIN (e.g. https://chat.example.com; * for any) call "
        "the API: preflights answered, CORS headers on every answer. Repeatable; off by default.",
    )
    @click.option(
        "--max-response-bytes",
        default=DEFAULT_MAX_RESPONSE_BYTES,
        show_default=True,
        type=click.IntRange(1),
        help="A larger upstream body (error bodies too), or one larger stream event, fails the "
        "attempt as a bad gateway.",
    )
    @click.option(
        "--metrics-token",
        default=None,
        envvar="ROUTECTL_METRICS_TOKEN",
        show_envvar=True,
        help="When set, /metrics needs `Authorization: Bearer TOKEN` and shows every series; "
        "without it /metrics shows only the series that name no private connection or model.",
    )
    @click.option(
        "--redis-url",
        envvar="ROUTECTL_REDIS_URL",
        show_envvar=True,
        metavar="URL",
        help="Keep routing.yaml's limits in this Redis, shared by every replica "
        "(redis://host:6379/0; needs `pip install 'routectl[redis]'`). Without it each "
        "process counts alone.",
    )
    @click.option(
        "--upstream-client",
        type=click.Choice(UPSTREAM_CLIENTS),
        default=UPSTREAM_CLIENTS[0],
        show_default=True,
        envvar="ROUTECTL_UPSTREAM_CLIENT",
        show_envvar=True,
        help="The upstream HTTP client: routectl's lean HTTP/1.1 client, or aiohttp's "
        "ClientSession (the client before issue 16; docs/performance.md compares them).",
    )
    def serve(
        table_path: Path,
        watch: bool,
        host: str,
        port: int,
        workers: int,
        max_body_bytes: int,
        drain_seconds: int,
        log_database_url: str | None,
        log_spool_dir: Path | None,
        log_spool_max_bytes: int,
        cors_origins: tuple[str, ...],
        max_response_bytes: int,
        metrics_token: str | None,
        redis_url: str | None,
        upstream_client: str,
    ) -> None:
        """Serve OpenAI-compatible requests routed by the frozen table; SIGHUP reloads it,
        SIGTERM drains and stops."""
        # imported here: every other command (compile in CI) skips the runtime's imports
        from routectl.review.explain_http import mount_explain
        from routectl.runtime import server
        from routectl.runtime.cors import cors_mount
        from routectl.runtime.limits.settings import limit_settings_for
        from routectl.table import TableError, load_table

        server.remember_early_hup()  # inherited by forked workers until their loop takes SIGHUP
        try:
            table = load_table(table_path)  # fail fast, before binding or forking; loaded once
        except TableError as exc:
            raise click.ClickException(str(exc)) from exc
        mounts: list[Mount] = [mount_explain]
        if log_database_url:
            mounts.append(_request_log_mount(log_database_url, log_spool_dir, log_spool_max_bytes))
        if cors_origins:
            mounts.append(cors_mount(cors_origins))
        server.setup_logging()
        try:
            limit_settings = limit_settings_for(redis_url)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        worker = server.Worker(
            table,
            table_path,
            host,
            port,
            max_body_bytes,
            mounts=tuple(mounts),
            watch=watch,
            drain_seconds=drain_seconds,
            max_response_bytes=max_response_bytes,
            metrics_token=metrics_token or None,
            limit_settings=limit_settings,
            upstream_client=upstream_client,
        )
        status = server.run(worker, workers)
        if status:
            sys.exit(status)


def _request_log_mount(url: str, spool_dir: Path | None, spool_max_bytes: int) -> Mount:
    """The request_logs sink (routectl.requestlogs), or a usage error saying what is missing."""
    try:
        import psycopg

        from routectl.requestlogs.sink import request_log_mount
    except ModuleNotFoundError as exc:
        raise click.UsageError(
            f"--log-database-url needs psycopg ({exc.name} is not installed): "
            "pip install 'routectl[logs]'"
        ) from exc
    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise click.BadParameter(
            f"not a libpq URL or conninfo: {exc}", param_hint="--log-database-url"
        ) from exc
    return request_log_mount(url, spool_dir, spool_max_bytes)
