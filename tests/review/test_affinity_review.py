"""`explain` and `simulate` honour a collection's session affinity, with the runtime's own code."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from routectl.cli import main
from routectl.runtime.affinity import hash_text, key_hash, rendezvous_pick

from .conftest import BASE_YAML, variant

STICKY = variant(
    (
        "    strategy: weighted\n    members:\n      - {model: echo/echo-1, weight: 0.5}",
        '    strategy: weighted\n    affinity: {key: "header:x-session-id"}\n    members:\n'
        "      - {model: echo/echo-1, weight: 0.5}",
    ),
    text=BASE_YAML,
)


def _config(tmp_path: Path) -> str:
    path = tmp_path / "routing.yaml"
    path.write_text(STICKY, encoding="utf-8")
    return str(path)


def _owner(key: str) -> str:
    members = ["echo/echo-1", "echo/echo-mini"]
    return members[rendezvous_pick(key_hash(key), members, [0.5, 0.5])]


def test_explain_puts_the_key_s_member_first(tmp_path: Path) -> None:
    config = _config(tmp_path)
    for key in ("conv-1", "conv-2", "conv-3", "conv-4"):
        args = ["explain", "collection/split", "--as", "ann", "--config", config]
        out = CliRunner().invoke(main, [*args, "--affinity-key", key, "--format", "json"])
        assert out.exit_code == 0, out.output
        data = json.loads(out.output)
        assert data["affinity"] == {"key_hash": hash_text(key_hash(key)), "member": _owner(key)}
        assert data["candidates"][0]["member"] == _owner(key)
        assert key not in out.output  # the key itself is never shown, only its hash
        text = CliRunner().invoke(main, [*args, "--affinity-key", key]).output
        assert f"-> {_owner(key)} (rendezvous" in text
    plain = CliRunner().invoke(
        main, ["explain", "collection/split", "--as", "ann", "--config", config]
    )
    assert "affinity: by header:x-session-id; this request has no key" in plain.output


def test_simulate_with_session_keys_sends_each_key_to_one_member(tmp_path: Path) -> None:
    config = _config(tmp_path)
    args = ["simulate", "split", "--as", "ann", "--config", config, "-n", "400"]
    out = CliRunner().invoke(main, [*args, "--affinity-keys", "4", "--format", "json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    expected = {"echo/echo-1": 0, "echo/echo-mini": 0}
    for k in range(4):
        expected[_owner(f"session-{k}")] += 100  # each key 100 times, always to its member
    assert {m: s["first_choice"] for m, s in data["members"].items()} == expected
    assert (
        "affinity over 4 session keys"
        in CliRunner().invoke(main, [*args, "--affinity-keys", "4"]).output
    )
    refused = CliRunner().invoke(
        main, ["simulate", "chain", "--as", "ann", "--config", config, "--affinity-keys", "3"]
    )
    assert refused.exit_code == 2 and "has no affinity" in refused.output
