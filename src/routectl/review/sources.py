"""Where review tools get their tables: a config file, a compiled table, or a file at a git ref."""

from __future__ import annotations

import subprocess
from pathlib import Path

from routectl.errors import RoutectlError
from routectl.table import RoutingTable, TableError, load_table, load_table_bytes

__all__ = ["SourceError", "git_show", "table_at_ref", "table_from_file", "table_from_text"]


class SourceError(RoutectlError):
    """A base revision or file could not be read."""


def table_from_text(text: str, name: str) -> RoutingTable:
    """Compile routing.yaml text (called `name` in diagnostics) to a table."""
    from routectl.compiler import build_table  # the compiler is heavy; only review commands need it

    return build_table(name, text=text, filename=name)


def table_from_file(path: str | Path) -> RoutingTable:
    """A compiled table (*.json) as is, or a routing.yaml compiled now."""
    p = Path(path)
    if p.suffix == ".json":
        return load_table(p)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(f"cannot read {p}: {exc.strerror}") from exc
    return table_from_text(text, str(p))


def git_show(ref: str, path: str | Path) -> str | None:
    """The file's text at `ref` without a checkout; None when the file did not exist there."""
    p = Path(path).resolve()
    # `REF:./name` is relative to the cwd, so the config may live anywhere inside the repository
    proc = subprocess.run(
        ["git", "show", f"{ref}:./{p.name}"],
        cwd=p.parent,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if proc.returncode == 0:
        return proc.stdout
    verify = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        cwd=p.parent,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if verify.returncode != 0:
        detail = proc.stderr.strip().splitlines()
        raise SourceError(f"cannot read git ref {ref!r}: {detail[-1] if detail else 'unknown'}")
    return None  # the ref exists but the file is new in this change


def table_at_ref(ref: str, path: str | Path) -> RoutingTable | None:
    """The table compiled from the config as it was at `ref`; None when it did not exist."""
    text = git_show(ref, path)
    if text is None:
        return None
    if Path(path).suffix == ".json":  # a compiled table at the ref, read as one (hash verified)
        try:
            return load_table_bytes(text.encode())
        except TableError as exc:
            raise SourceError(f"{ref}:{path}: {exc}") from exc
    return table_from_text(text, f"{ref}:{path}")
