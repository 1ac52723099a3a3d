"""The migration chain in generated/migrations/ and its policy.

A file's name and the from/to hashes and digest in its header; whether the files form one sound
chain; whether the next migration can be a difference or must resynchronise the whole state.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from routectl.compiler.db.rows import SCHEMA_VERSION
from routectl.table import RoutingTable, dump_table

__all__ = [
    "MIGRATIONS_DIR",
    "SEED_FILE",
    "MigrationChain",
    "MigrationFile",
    "content_digest",
    "must_resync",
    "parse_chain",
    "read_chain",
    "stamp_digest",
    "table_hash",
    "verify_migrations",
]

# Paths relative to generated/: the migrations folder and the seed next to it.
MIGRATIONS_DIR = "migrations"
SEED_FILE = "seed.sql"

_NAME = re.compile(r"^(\d{4})_([a-z0-9._-]+)\.sql$")
_FROM = re.compile(r"^-- from: (empty|[0-9a-f]{64})$", re.MULTILINE)
_TO = re.compile(r"^-- to: ([0-9a-f]{64})$", re.MULTILINE)
# The schema version a migration leaves the database at; files written before there was a
# second version have no such line and are at version 1.
_SCHEMA = re.compile(r"^-- schema: (\d+)$", re.MULTILINE)
# The file's own digest: a migration that may have run somewhere must never change, and a
# reviewer must be able to trust that the SQL in the file is the SQL compile generated.
_DIGEST = re.compile(r"^-- sha256: ([0-9a-f]{64})\n", re.MULTILINE)


def content_digest(text: str) -> str:
    """sha256 of a migration's text without its `-- sha256:` line."""
    return hashlib.sha256(_DIGEST.sub("", text, count=1).encode()).hexdigest()


def stamp_digest(text: str) -> str:
    """The migration with a `-- sha256:` line after its `-- to:` line (replacing one it had)."""
    text = _DIGEST.sub("", text, count=1)
    to = _TO.search(text)
    assert to is not None, "a rendered migration names its `to` table"
    at = to.end() + 1
    return f"{text[:at]}-- sha256: {content_digest(text)}\n{text[at:]}"


@dataclass(frozen=True, slots=True)
class MigrationFile:
    """One migration file as its header describes it."""

    number: int
    name: str  # file name without .sql, e.g. 0002_flash2.5_add_member_gpt-4o
    path: str  # as given (relative to generated/)
    from_hash: str | None  # None: the empty database
    to_hash: str
    schema: int = 1  # the schema version it leaves the database at (its `-- schema:` line)


def parse_chain(files: dict[str, bytes]) -> tuple[list[MigrationFile], list[str]]:
    """Parse migration files (keys: paths ending in NNNN_slug.sql) into a sorted chain and problems."""
    chain: list[MigrationFile] = []
    problems: list[str] = []
    for path in sorted(files):
        base = PurePosixPath(path).name
        if not base.endswith(".sql"):
            continue
        match = _NAME.match(base)
        if match is None:
            problems.append(f"{path}: not a migration file name (expected NNNN_slug.sql)")
            continue
        text = files[path].decode("utf-8", errors="replace")
        head = "\n".join(text.splitlines()[:10])
        from_match, to_match = _FROM.search(head), _TO.search(head)
        if from_match is None or to_match is None:
            problems.append(f"{path}: header has no `-- from:` / `-- to:` hashes")
            continue
        digest = _DIGEST.search(head + "\n")
        if digest is None:
            problems.append(f"{path}: header has no `-- sha256:` line")
            continue
        if digest.group(1) != content_digest(text):
            problems.append(
                f"{path}: edited after it was generated (its content no longer matches its "
                "`-- sha256:` line); restore it from version control: a migration that may "
                "have been applied somewhere must not change"
            )
            continue
        raw_from = from_match.group(1)
        schema = _SCHEMA.search(head)
        chain.append(
            MigrationFile(
                number=int(match.group(1)),
                name=base.removesuffix(".sql"),
                path=path,
                from_hash=None if raw_from == "empty" else raw_from,
                to_hash=to_match.group(1),
                schema=int(schema.group(1)) if schema else 1,
            )
        )
    chain.sort(key=lambda m: (m.number, m.name))
    return chain, problems


def table_hash(table: RoutingTable) -> str:
    """The hash a migration header names for `table` (computed when the table has none yet)."""
    return table.sha256 or dump_table(table)[1]


@dataclass(frozen=True)
class MigrationChain:
    """The migrations of generated/migrations/, read once: headers parsed, digests checked."""

    files: list[MigrationFile]  # the parseable ones, in order
    # what is wrong whatever the table: not migrations, edited files, gaps, links that do not join
    problems: list[str]


def _migration_files(existing: dict[str, bytes]) -> dict[str, bytes]:
    """The files of generated/migrations/, whether keyed as `migrations/X.sql` or `X.sql`."""
    out = {}
    for path, data in existing.items():
        pure = PurePosixPath(path)
        if pure.name == SEED_FILE and len(pure.parts) == 1:
            continue
        if len(pure.parts) == 1 or pure.parts[-2] == MIGRATIONS_DIR:
            out[f"{MIGRATIONS_DIR}/{pure.name}"] = data
    return out


def read_chain(existing: dict[str, bytes]) -> MigrationChain:
    """Parse and check the migration files (keyed by path relative to generated/)."""
    chain, problems = parse_chain(_migration_files(existing))
    for index, m in enumerate(chain, start=1):
        where = m.path
        if m.number != index:
            expected = f"{index:04d}"
            problems.append(
                f"{where}: numbered {m.number:04d}, expected {expected} (migrations must be "
                "numbered 0001, 0002, ... without gaps or repeats)"
            )
        if index == 1:
            if m.from_hash is not None:
                problems.append(f"{where}: the first migration must start from the empty database")
        elif m.from_hash != chain[index - 2].to_hash:
            problems.append(
                f"{where}: starts from table {m.from_hash or 'empty'}, but the previous "
                f"migration ends at {chain[index - 2].to_hash}"
            )
    return MigrationChain(chain, problems)


def must_resync(previous: RoutingTable | None, chain: list[MigrationFile]) -> bool:
    """True when the next migration cannot be a difference: the chain ends at a table that is not
    the one in generated/ (deleted or edited by hand), so it converges to the whole new state."""
    return bool(chain) and (previous is None or table_hash(previous) != chain[-1].to_hash)


def verify_migrations(
    existing: dict[str, bytes],
    table: RoutingTable,
    chain: MigrationChain | None = None,
    schema_version: int = SCHEMA_VERSION,
) -> list[str]:
    """Problems with the migration chain in generated/migrations/ (empty when it is sound)."""
    chain = chain or read_chain(existing)
    problems = list(chain.problems)
    if not chain.files:  # (when every file had a problem, those problems say it)
        return problems or ["migrations/ holds no migrations; run `routectl compile`"]
    last = chain.files[-1]
    expected_hash = table_hash(table)
    if last.to_hash != expected_hash:
        problems.append(
            f"{last.path}: the chain ends at table {last.to_hash}, "
            f"but routing.yaml compiles to {expected_hash}; run `routectl compile`"
        )
    if last.schema < schema_version:
        problems.append(
            f"{last.path}: the chain ends at schema version {last.schema}, but this routectl "
            f"writes version {schema_version}; run `routectl compile` (it adds the migration "
            "that upgrades the schema)"
        )
    return problems
