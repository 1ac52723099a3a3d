"""Processes the bench starts: pinned, each in its own process group, always stopped; /proc figures."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
TASKSET = shutil.which("taskset")


def pinned(argv: Sequence[str], cpus: str | None) -> list[str]:
    """argv prefixed with `taskset -c cpus` when taskset exists and cpus is given."""
    if cpus is None or TASKSET is None:
        return list(argv)
    return [TASKSET, "-c", cpus, *argv]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    """A started process: its own session (so its whole group can be signalled) and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """The process id (taskset execs, so it is the program's own)."""
        return self.popen.pid

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the process's output, for error messages."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class ProcessGroup:
    """Every process the bench starts; `stop_all` (called from finally) ends them all."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[Proc] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        cpus: str | None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        separate_stderr: bool = False,
    ) -> Proc:
        """Start argv pinned to cpus, output to <log_dir>/<name>.log (stderr too, unless
        `separate_stderr`: then <name>.err.log, and the log holds only what it prints)."""
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as out, (self.log_dir / f"{name}.err.log").open("wb") as err:
            popen = subprocess.Popen(
                pinned(argv, cpus),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err if separate_stderr else subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                start_new_session=True,
                cwd=cwd,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc, grace_s: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left after grace_s."""
        if proc in self.procs:
            self.procs.remove(proc)
        if proc.popen.poll() is not None:
            _kill_group(proc.pid, signal.SIGKILL)  # stragglers of an exited leader
            return
        _kill_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=grace_s)
        _kill_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=2)

    def stop_all(self) -> None:
        """Stop every process still running, newest first."""
        for proc in reversed(list(self.procs)):
            self.stop(proc)


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_http(
    url: str, proc: Proc | None, timeout_s: float, headers: Mapping[str, str] | None = None
) -> None:
    """Poll GET url until it answers (any status below 500); fail early if proc exits."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(
                f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}"
            )
        req = urllib.request.Request(url, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.1)
    tail = f"\n{proc.log_tail()}" if proc is not None else ""
    raise RuntimeError(f"{url} not ready after {timeout_s:.0f}s ({last}){tail}")


# ---------------------------------------------------------------- /proc figures of a process tree


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                kids += [
                    int(x) for x in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                ]
    return kids


def tree(pid: int) -> list[int]:
    """pid and all its descendants (workers of a multi-process server)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += _children(p)
    return out


def cpu_ticks(pid: int) -> int:
    """utime + stime of the process tree, in clock ticks."""
    total = 0
    for p in tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # the command name may hold spaces; the fields after its closing ')' are fixed
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total


def _status_kb(pid: int, field: str) -> int:
    total = 0
    for p in tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
    return total


def peak_rss_kb(pid: int) -> int:
    """Sum of VmHWM (peak resident set) over the process tree, in KiB."""
    return _status_kb(pid, "VmHWM")


def rss_kb(pid: int) -> int:
    """Sum of VmRSS (current resident set) over the process tree, in KiB."""
    return _status_kb(pid, "VmRSS")
