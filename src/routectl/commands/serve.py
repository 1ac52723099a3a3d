"""CLI commands: serve (the runtime). Composes the app; the process model is runtime/server.py."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from routectl.runtime.options import DEFAULT_MAX_BODY_BYTES, UPSTREAM_CLIENTS
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
        upstream_client: str,
    ) -> None:
        """Serve OpenAI-compatible requests routed by the frozen table; SIGHUP reloads it,
        SIGTERM drains and stops."""
        # imported here: every other command (compile in CI) skips the runtime's imports
        from routectl.review.explain_http import mount_explain
        from routectl.runtime import server
        from routectl.table import TableError, load_table

        server.remember_early_hup()  # inherited by forked workers until their loop takes SIGHUP
        try:
            table = load_table(table_path)  # fail fast, before binding or forking; loaded once
        except TableError as exc:
            raise click.ClickException(str(exc)) from exc
        server.setup_logging()
        worker = server.Worker(
            table,
            table_path,
            host,
            port,
            max_body_bytes,
            mounts=(mount_explain,),
            watch=watch,
            drain_seconds=drain_seconds,
            upstream_client=upstream_client,
        )
        status = server.run(worker, workers)
        if status:
            sys.exit(status)
