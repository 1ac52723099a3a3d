"""CLI commands of the compiler: validate, compile, check, schema, hash-key.

The compiler's modules (pyyaml, jsonschema, pydantic) are imported inside the commands so that
`routectl serve` never loads them.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from routectl.errors import Diagnostic

_CONFIG = click.argument(
    "config", default="routing.yaml", type=click.Path(dir_okay=False, path_type=Path)
)
_OUT = click.option(
    "--out",
    "out_dir",
    default="generated",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of the generated files.",
)


def _fail_with(diagnostics: list[Diagnostic], tail: str) -> None:
    for d in diagnostics:
        click.echo(d.format(), err=True)
    n = len(diagnostics)
    click.echo(f"{n} error{'s' if n != 1 else ''}; {tail}", err=True)
    sys.exit(1)


def _warn(warnings: list[Diagnostic]) -> None:
    """Warnings go to stderr, gcc style; they never change the exit code."""
    for d in warnings:
        click.echo(d.format(), err=True)


@click.command("validate")
@_CONFIG
def validate_cmd(config: Path) -> None:
    """Validate CONFIG (default ./routing.yaml); report every problem at once."""
    from routectl.compiler import build_table
    from routectl.errors import ConfigError

    warnings: list[Diagnostic] = []
    try:
        table = build_table(config, warnings=warnings)
    except ConfigError as exc:
        _fail_with(list(exc.diagnostics), f"{config} is invalid")
        return
    _warn(warnings)
    noted = f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else ""
    click.echo(
        f"{config}: ok ({len(table.collections)} collections, {len(table.connections)} "
        f"connections, {len(table.models)} models, {len(table.users)} users{noted})"
    )


@click.command("compile")
@_CONFIG
@_OUT
def compile_cmd(config: Path, out_dir: Path) -> None:
    """Validate CONFIG and write the routing table and SQL to --out."""
    from routectl.compiler import build_table
    from routectl.compiler.generate import plan_outputs, write_outputs
    from routectl.compiler.output_dir import OutputDirError
    from routectl.errors import ConfigError

    warnings: list[Diagnostic] = []
    try:
        table = build_table(config, warnings=warnings)
    except ConfigError as exc:
        _fail_with(list(exc.diagnostics), f"nothing written to {out_dir}/")
        return
    _warn(warnings)
    plan = plan_outputs(table, out_dir)
    for warning in plan.warnings:
        click.echo(f"warning: {warning}", err=True)
    if plan.errors:
        for problem in plan.errors:
            click.echo(f"error: {out_dir}/{problem}", err=True)
        click.echo(
            f"{len(plan.errors)} problem(s) in {out_dir}/migrations; nothing written", err=True
        )
        raise SystemExit(1)
    try:
        written = write_outputs(plan, out_dir)
    except OutputDirError as exc:
        click.echo(f"error: {exc}; nothing written", err=True)
        raise SystemExit(1) from None
    for rel in written:
        click.echo(f"wrote {out_dir / rel}")
    if written:
        click.echo(f"routing table {table.sha256}")
    else:
        click.echo(f"{out_dir}/ is up to date (routing table {table.sha256})")


@click.command("check")
@_CONFIG
@_OUT
def check_cmd(config: Path, out_dir: Path) -> None:
    """Exit 0 when --out holds exactly what compile would write, else 1 naming each stale file."""
    from routectl.compiler import build_table
    from routectl.compiler.db.chain import verify_migrations
    from routectl.compiler.generate import plan_outputs, stale_files
    from routectl.compiler.output_dir import leftovers, strays
    from routectl.errors import ConfigError

    try:
        table = build_table(config)
    except ConfigError as exc:
        _fail_with(list(exc.diagnostics), f"{config} is invalid")
        return
    plan = plan_outputs(table, out_dir)
    problems = [f"{reason}: {out_dir / rel}" for rel, reason in stale_files(plan, out_dir)]
    chain_problems = verify_migrations(plan.existing_migrations, table, plan.chain)
    problems += [f"migrations: {p}" for p in chain_problems]
    # non-.sql files in migrations/ are no migrations: stray like any other
    expected = set(plan.files) | {m for m in plan.existing_migrations if m.endswith(".sql")}
    problems += [
        f"stray (compile does not write it): {out_dir / rel}" for rel in strays(out_dir, expected)
    ]
    problems += [f"left by an interrupted compile: {p}" for p in leftovers(out_dir)]
    if problems:
        for line in problems:
            click.echo(line, err=True)
        if plan.errors:  # compile would refuse: say what comes first
            click.echo(
                f"{out_dir}/migrations has problems compile will not paper over; fix them "
                "(restore edited files from version control), then run `routectl compile`",
                err=True,
            )
        elif any(line.startswith(("stray", "left by")) for line in problems):
            click.echo(
                f"{out_dir}/ holds files compile does not write: remove them (and run "
                "`routectl compile` if anything else is named)",
                err=True,
            )
        else:
            click.echo(f"{out_dir}/ is stale; run `routectl compile`", err=True)
        sys.exit(1)
    click.echo(f"{out_dir}/ is up to date (routing table {table.sha256})")


@click.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of routing.yaml (the same as schema/routing.schema.json)."""
    from routectl.compiler.json_schema import json_schema_text

    click.echo(json_schema_text(), nl=False)


@click.command("hash-key")
def hash_key_cmd() -> None:
    """Read a bearer key on stdin; print the sha256:<hex> digest for users.*.api_keys."""
    raw = sys.stdin.buffer.read()
    key = raw.removesuffix(b"\n").removesuffix(b"\r")
    if not key:
        raise click.UsageError('no key on stdin; try: printf %s "$KEY" | routectl hash-key')
    click.echo(f"sha256:{hashlib.sha256(key).hexdigest()}")


def register(group: click.Group) -> None:
    """Attach this area's commands."""
    for command in (validate_cmd, compile_cmd, check_cmd, schema_cmd, hash_key_cmd):
        group.add_command(command)
