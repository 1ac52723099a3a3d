"""The migration chain in generated/migrations/: file names and the from/to hashes in their headers."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

__all__ = ["MigrationFile", "content_digest", "parse_chain", "stamp_digest"]

_NAME = re.compile(r"^(\d{4})_([a-z0-9._-]+)\.sql$")
_FROM = re.compile(r"^-- from: (empty|[0-9a-f]{64})$", re.MULTILINE)
_TO = re.compile(r"^-- to: ([0-9a-f]{64})$", re.MULTILINE)
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
        chain.append(
            MigrationFile(
                number=int(match.group(1)),
                name=base.removesuffix(".sql"),
                path=path,
                from_hash=None if raw_from == "empty" else raw_from,
                to_hash=to_match.group(1),
            )
        )
    chain.sort(key=lambda m: (m.number, m.name))
    return chain, problems
