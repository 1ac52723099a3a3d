"""generated/ written as one unit: the new state is built in a sibling folder and swapped in.

A compile that dies at any point (a kill, a full disk) leaves generated/ exactly as it was: the
files are written in `.<name>.new-*` beside it, which replaces generated/ with one exchange
(renameat2 RENAME_EXCHANGE on Linux; elsewhere two renames, the old folder kept as
`.<name>.old-*` until the new one is in place, and restored by the next compile if a kill fell
between them). Leftovers of a killed compile are removed by the next one and named by `check`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from routectl.errors import RoutectlError

__all__ = ["OutputDirError", "leftovers", "strays", "swap_in"]

# the per-file temporary names of earlier compiles (`.routing_table.json.x1y2.tmp`)
_FILE_TMP = re.compile(r"^\..+\.tmp$")
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class OutputDirError(RoutectlError):
    """generated/ cannot be written as planned (a planned file's path is a folder, ...)."""


def _sibling_prefix(out_dir: Path, kind: str) -> str:
    return f".{out_dir.name}.{kind}-"


def leftovers(out_dir: Path) -> list[Path]:
    """Folders a killed compile left beside `out_dir`."""
    parent = out_dir.parent
    if not parent.is_dir():
        return []
    prefixes = (_sibling_prefix(out_dir, "new"), _sibling_prefix(out_dir, "old"))
    return sorted(p for p in parent.iterdir() if p.name.startswith(prefixes) and p.is_dir())


def strays(out_dir: Path, expected: set[str]) -> list[str]:
    """Paths under `out_dir` (relative, POSIX) that compile does not write: leftover temporary
    files, files added by hand, folders where compile writes files."""
    if not out_dir.is_dir():
        return []
    found: list[str] = []
    for root, dirs, files in os.walk(out_dir):
        base = Path(root).relative_to(out_dir)
        for name in sorted(files) + sorted(dirs):
            rel = (base / name).as_posix()
            is_dir = name in dirs
            if is_dir and any(e.startswith(rel + "/") for e in expected):
                continue  # a folder compile writes into (migrations/)
            if rel not in expected or is_dir:
                found.append(rel + ("/" if is_dir else ""))
        dirs[:] = [
            d for d in dirs if any(e.startswith((base / d).as_posix() + "/") for e in expected)
        ]
    return sorted(found)


def _check_paths(out_dir: Path, files: Mapping[str, bytes]) -> None:
    for rel in files:
        path = out_dir / rel
        for parent in reversed(path.relative_to(out_dir).parents):
            at = out_dir / parent
            if parent != Path(".") and at.exists() and not at.is_dir():
                raise OutputDirError(f"{at} is a file where compile writes a folder; move it away")
        if path.is_dir():
            raise OutputDirError(f"{path} is a folder where compile writes a file; move it away")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputDirError(f"{out_dir} is not a folder")


def _recover(out_dir: Path) -> None:
    """Undo what a compile killed mid-swap left: the old folder back if generated/ is missing,
    every other leftover removed."""
    for path in leftovers(out_dir):
        if path.name.startswith(_sibling_prefix(out_dir, "old")) and not out_dir.exists():
            os.rename(path, out_dir)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return bool(result == 0)


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a hard link to the old folder's file: never write through it
    with open(path, "wb") as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, 0o644)


def _copy_entry(src: Path, dst: Path) -> None:
    if src.is_dir() and not src.is_symlink():
        dst.mkdir(exist_ok=True)
        for child in src.iterdir():
            _copy_entry(child, dst / child.name)
        return
    try:
        os.link(src, dst, follow_symlinks=False)  # unchanged files: no copy
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def swap_in(out_dir: Path, changed: Mapping[str, bytes]) -> None:
    """Make `out_dir` hold its current files with `changed` (relative path -> bytes) written
    over them, all at once. Compile's own old temporary files are dropped; anything else that
    was there is kept (and named by `check`)."""
    _recover(out_dir)
    _check_paths(out_dir, changed)
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=_sibling_prefix(out_dir, "new"), dir=parent))
    try:
        if out_dir.is_dir():
            for entry in out_dir.iterdir():
                if not _FILE_TMP.match(entry.name):
                    _copy_entry(entry, new / entry.name)
        for rel, content in changed.items():
            _write(new / rel, content)
        os.chmod(new, 0o755)
        _fsync_dir(new)
        if not out_dir.exists():
            os.rename(new, out_dir)
        elif _exchange(new, out_dir):
            shutil.rmtree(new)  # now the old state
        else:
            old = Path(tempfile.mkdtemp(prefix=_sibling_prefix(out_dir, "old"), dir=parent))
            os.rmdir(old)
            os.rename(out_dir, old)
            os.rename(new, out_dir)
            shutil.rmtree(old)
        _fsync_dir(parent)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
