"""The files of generated/: planned in memory, compared with what is on disk, written atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from routectl.compiler.db.chain import MIGRATIONS_DIR, MigrationChain, must_resync, read_chain
from routectl.compiler.db.outputs import sql_outputs
from routectl.compiler.output_dir import swap_in
from routectl.gcpause import gc_paused
from routectl.table import RoutingTable, TableError, dump_table, load_table_bytes

__all__ = [
    "TABLE_FILE",
    "Plan",
    "plan_outputs",
    "read_existing_migrations",
    "stale_files",
    "write_outputs",
]

TABLE_FILE = "routing_table.json"


@dataclass(frozen=True)
class Plan:
    """Every file compile would write (paths relative to the output dir) and notes on the way."""

    table: RoutingTable
    files: dict[str, bytes]
    existing_migrations: dict[str, bytes]
    chain: MigrationChain
    warnings: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """The migrations already there are broken (edited, renumbered, unlinked): compile must
        not add to a chain it cannot trust, so it writes nothing and says what to restore."""
        return self.chain.problems


def read_existing_migrations(out_dir: Path) -> dict[str, bytes]:
    """Current files under out_dir/migrations, keyed by path relative to out_dir."""
    folder = out_dir / MIGRATIONS_DIR
    if not folder.is_dir():
        return {}
    return {
        f"{MIGRATIONS_DIR}/{p.name}": p.read_bytes()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def _previous_table(out_dir: Path, warnings: list[str]) -> RoutingTable | None:
    path = out_dir / TABLE_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:  # a folder by that name, unreadable...
        warnings.append(f"ignoring {path}: {exc.strerror}")
        return None
    try:
        return load_table_bytes(raw)
    except TableError as exc:
        warnings.append(f"ignoring {path}: {exc}")
        return None


def plan_outputs(table: RoutingTable, out_dir: Path) -> Plan:
    """Everything compile writes for `table`, given what out_dir holds now; writes nothing."""
    warnings: list[str] = []
    with gc_paused():
        previous = _previous_table(out_dir, warnings)
        existing = read_existing_migrations(out_dir)
        chain = read_chain(existing)
        table_bytes, _ = dump_table(table)
        files = {TABLE_FILE: table_bytes}
        for rel, content in sql_outputs(previous, table, existing, chain).items():
            files[rel] = content
    added = [rel for rel in files if rel.startswith(f"{MIGRATIONS_DIR}/") and rel not in existing]
    if added and must_resync(previous, chain.files):
        warnings.append(
            f"{added[0]} resynchronises the whole state: {out_dir / TABLE_FILE} is missing or "
            "is not the table the migrations end at, so there is nothing to diff against "
            "(restore it from version control and compile again for a minimal migration)"
        )
    return Plan(
        table=table,
        files=dict(sorted(files.items())),
        existing_migrations=existing,
        chain=chain,
        warnings=warnings,
    )


def stale_files(plan: Plan, out_dir: Path) -> list[tuple[str, str]]:
    """(relative path, "missing" | "differs" | "not a file") for each planned file not on disk
    as planned."""
    out: list[tuple[str, str]] = []
    for rel, content in plan.files.items():
        path = out_dir / rel
        try:
            current = path.read_bytes()
        except FileNotFoundError:
            out.append((rel, "missing"))
            continue
        except OSError:  # a folder where the file goes, a file where its folder goes
            out.append((rel, "not a file"))
            continue
        if current != content:
            out.append((rel, "differs"))
    return out


def write_outputs(plan: Plan, out_dir: Path) -> list[str]:
    """Write the planned files whose bytes changed, all in one swap of out_dir (see
    output_dir.py); the relative paths written. OutputDirError when a path is in the way."""
    stale = [rel for rel, _reason in stale_files(plan, out_dir)]
    if stale:
        swap_in(out_dir, {rel: plan.files[rel] for rel in stale})
    return stale
