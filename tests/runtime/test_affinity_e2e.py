"""Session affinity over HTTP: the gateway's answers, and two separate `routectl serve` processes
that agree on every key with no shared state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import KEYS, Gateway, make_table
from openai import OpenAI
from procs import serving

from routectl.runtime.affinity import hash_text, key_hash, rendezvous_pick
from routectl.table import dump_table

pytestmark = pytest.mark.e2e

FIVE_MODELS = """  echo/e3: {context_window: 100000, trust_level: 30, free: true}
  echo/e4: {context_window: 100000, trust_level: 30, free: true}
  echo/e5: {context_window: 100000, trust_level: 30, free: true}
"""
FIVE_CONNECTION = (
    "  - {id: platform-echo-more, owner: platform, provider: echo, "
    "models: [echo/e3, echo/e4, echo/e5]}\n"
)
MEMBERS = [
    ("echo/e1", 0.4),
    ("echo/e2", 0.3),
    ("echo/e3", 0.15),
    ("echo/e4", 0.1),
    ("echo/e5", 0.05),
]


def _sticky(key: str, strategy: str = "round_robin") -> str:
    rows = "\n".join(f"      - {{model: {m}, weight: {w}}}" for m, w in MEMBERS)
    return f"""
  sticky:
    scope: system
    strategy: {strategy}
    affinity: {{key: "{key}"}}
    members:
{rows}
"""


def _owner(key: str) -> str:
    models = [m for m, _ in MEMBERS]
    return models[rendezvous_pick(key_hash(key), models, [w for _, w in MEMBERS])]


def test_the_same_session_key_reaches_the_same_member_and_only_its_hash_is_shown(
    start: Callable[..., Gateway],
) -> None:
    gw = start(
        collections=_sticky("header:x-session-id"),
        models=FIVE_MODELS,
        connections=FIVE_CONNECTION,
    )
    client = OpenAI(api_key=KEYS["carol"], base_url=gw.base_url, max_retries=0)
    messages: Any = [{"role": "user", "content": "hi"}]
    for key in ("conversation-a", "conversation-b", "conversation-c"):
        seen = set()
        for _ in range(4):
            raw = client.chat.completions.with_raw_response.create(
                model="collection/sticky",
                messages=messages,
                extra_headers={"x-session-id": key},
            )
            body = raw.http_response.json()
            seen.add(body["_selected_model"])
            assert body["_affinity_key_hash"] == hash_text(key_hash(key))
            assert key not in raw.http_response.text
        assert seen == {_owner(key)}
    # no key: round robin alone, and no hash
    plain = client.chat.completions.with_raw_response.create(
        model="collection/sticky", messages=messages
    )
    assert "_affinity_key_hash" not in plain.http_response.json()


def test_affinity_by_user_and_by_metadata(start: Callable[..., Gateway]) -> None:
    gw = start(
        collections=_sticky("user") + _sticky("metadata.user_id").replace("sticky:", "meta:"),
        models=FIVE_MODELS,
        connections=FIVE_CONNECTION,
    )
    messages: Any = [{"role": "user", "content": "hi"}]
    for who in ("alice", "bob", "carol"):
        client = OpenAI(api_key=KEYS[who], base_url=gw.base_url, max_retries=0)
        for _ in range(3):
            got = client.chat.completions.create(model="collection/sticky", messages=messages)
            assert got.model == _owner(who)
    client = OpenAI(api_key=KEYS["carol"], base_url=gw.base_url, max_retries=0)
    for end_user in ("u-1", "u-2", "u-3"):
        got = client.chat.completions.create(
            model="collection/meta", messages=messages, metadata={"user_id": end_user}
        )
        assert got.model == _owner(end_user)


async def _first_choices(port: int, keys: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    queue = list(keys)
    headers = {"Authorization": f"Bearer {KEYS['carol']}"}
    body = {"model": "collection/sticky", "messages": [{"role": "user", "content": "hi"}]}
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def worker() -> None:
            while queue:
                key = queue.pop()
                async with session.post(
                    url, json=body, headers={**headers, "x-session-id": key}
                ) as r:
                    assert r.status == 200
                    out[key] = (await r.json())["_selected_model"]

        await asyncio.gather(*(worker() for _ in range(16)))
    return out


@pytest.mark.slow
def test_two_serve_processes_agree_on_10000_keys(tmp_path: Path) -> None:
    table = make_table(
        collections=_sticky("header:x-session-id", "least_used"),
        models=FIVE_MODELS,
        connections=FIVE_CONNECTION,
    )
    path = tmp_path / "table.json"
    path.write_bytes(dump_table(table)[0])
    keys = [f"session-{i}" for i in range(10_000)]
    with (
        serving(path, tmp_path / "a.log") as a,
        serving(path, tmp_path / "b.log") as b,
    ):
        first = asyncio.run(_first_choices(a.port, keys))
        second = asyncio.run(_first_choices(b.port, keys))
    assert len(first) == len(second) == 10_000
    assert first == second  # no coordination, the same member for every key
    assert all(first[k] == _owner(k) for k in keys)
    total = sum(w for _, w in MEMBERS)
    for model, weight in MEMBERS:
        share = sum(1 for v in first.values() if v == model) / len(keys)
        assert abs(share - weight / total) < 0.02, (model, share)
