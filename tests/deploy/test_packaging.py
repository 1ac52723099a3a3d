"""The packaging split: `pip install routectl` is exactly the runtime, `routectl[cli]` the rest."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from routectl.compiler import build_table
from routectl.table import dump_table

CLI_ONLY = {"pydantic", "pyyaml", "jsonschema", "jinja2", "psycopg"}


def closure(extras: tuple[str, ...] = ()) -> set[str]:
    """Distributions that `pip install routectl[extras]` brings (names canonical)."""
    seen: set[str] = set()
    todo = [("routectl", extras)]
    while todo:
        name, wanted = todo.pop()
        for line in requires(name) or ():
            req = Requirement(line)
            envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(e) for e in envs):
                continue
            dist = canonicalize_name(req.name)
            if dist == "routectl":  # routectl[cli] inside dev
                todo.append((dist, tuple(req.extras)))
            elif dist not in seen:
                seen.add(dist)
                todo.append((dist, tuple(req.extras)))
    return seen


def test_the_base_install_is_the_runtime_and_the_cli_extra_the_rest() -> None:
    base = closure()
    assert not base & CLI_ONLY
    assert {"aiohttp", "orjson", "uvloop", "prometheus-client", "click"} <= base
    assert closure(("cli",)) >= CLI_ONLY
    assert closure(("cli",)) <= closure(("dev",))  # `pip install -e '.[dev]'` has everything
    # `routectl[logs]`: the runtime plus psycopg, for `serve --log-database-url` (request_logs)
    assert closure(("logs",)) - base == {"psycopg", "psycopg-binary", "typing-extensions"} - base


def test_the_request_log_sink_without_psycopg_says_how_to_get_it(tmp_path: Path) -> None:
    # as in an image built from `pip install routectl` without the logs extra
    table = tmp_path / "routing_table.json"
    table.write_bytes(dump_table(build_table(Path("routing.yaml")))[0])
    code = (
        "import sys\n"
        "sys.modules['psycopg'] = None\n"
        "from routectl.cli import main\n"
        f"main(['serve', '--table', {str(table)!r}, '--log-database-url', 'postgresql:///x'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "--log-database-url needs psycopg" in out.stderr
    assert "pip install 'routectl[logs]'" in out.stderr
    assert "Traceback" not in out.stderr


def test_serve_imports_nothing_outside_the_base_install() -> None:
    code = (  # what serve imports, less what the interpreter had loaded before (site hooks)
        "import sys, json\n"
        "before = set(sys.modules)\n"
        "import routectl.cli, routectl.commands.serve, routectl.runtime.server\n"
        "import routectl.review.explain_http, uvloop\n"
        "print(json.dumps(sorted({m.partition('.')[0] for m in set(sys.modules) - before})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    owners = packages_distributions()
    used = {
        canonicalize_name(dist)
        for module in json.loads(out.stdout)
        for dist in owners.get(module, ())
    } - {"routectl"}
    assert "aiohttp" in used  # the probe saw third-party modules at all
    assert used <= closure(), used - closure()


def test_a_cli_command_without_the_cli_extra_says_how_to_get_it() -> None:
    # as in the runtime image: the compiler's modules cannot be imported
    code = (
        "import sys\n"
        "for m in ('yaml', 'pydantic', 'jsonschema', 'jinja2'): sys.modules[m] = None\n"
        "from routectl.cli import main\n"
        "main(['validate', 'routing.yaml'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "needs the full CLI" in out.stderr and "pip install 'routectl[cli]'" in out.stderr
    assert "Traceback" not in out.stderr
