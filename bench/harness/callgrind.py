"""valgrind's callgrind, shared by the scripts that count instructions (profile_stages,
bench_request_logs, bench_clients): its output files' totals, and a C shim that gives Python the
client requests of callgrind.h (zero the counters, toggle collection, dump them under a name)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["build_shim", "total_instructions"]

_SHIM = r"""
#include <valgrind/callgrind.h>
void cg_zero(void) { CALLGRIND_ZERO_STATS; }
void cg_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }
void cg_dump(const char *name) { CALLGRIND_DUMP_STATS_AT(name); }
"""


def build_shim(work: Path) -> Path | None:
    """The shim compiled into `work` (load it with ctypes), or None without a C compiler or
    valgrind's headers."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not Path("/usr/include/valgrind/callgrind.h").exists():
        return None
    src = work / "cgshim.c"
    src.write_text(_SHIM)
    lib = work / "libcgshim.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(lib), str(src)], check=True)
    return lib


def total_instructions(path: Path | str) -> int:
    """The instruction total of one callgrind output file (its `totals:` or `summary:` line)."""
    for line in Path(path).read_text(errors="replace").splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")
