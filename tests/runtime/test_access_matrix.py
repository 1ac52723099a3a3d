"""The access matrix, generated from the table: for every caller and every way of naming a model
(provider/model, HANDLE/provider/model for every handle, collection/NAME, system names, aliases,
auto(x), load_balancer entries, and name tricks) the outcome an independent oracle expects,
checked against the live server; and the same callers against explain, the collections API,
/v1/models and /metrics. The oracle reads only the table: it restates the SPEC's access rules
instead of calling the runtime's."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from conftest import KEYS, FakeUpstream, LoopThread
from faults import Running, start_app

from routectl.review.explain_http import mount_explain
from routectl.table import RoutingTable

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

COLLECTIONS = """
  team:
    scope: system
    strategy: round_robin
    aliases: [team-alias, auto-team]
    members: [{model: fake/m2}, {model: echo/e1}]
  acme-only:
    scope: organization
    owner: acme
    strategy: priority
    members: [{model: acme/fake/m1}, {model: fake/m3}]
  alice-own:
    scope: user
    owner: alice
    strategy: least_used
    members: [{model: alice/fake/m1}]
  carol-own:
    scope: user
    owner: carol
    strategy: weighted
    members: [{model: fake/m3, weight: 0.6}, {model: echo/e2, weight: 0.4}]
"""
CALLERS = ("alice", "bob", "carol")
TRICKS = [
    "",
    "collection/",
    "COLLECTION/team",
    "Team",
    " fake/m1",
    "fake/m1 ",
    "fake//m1",
    "fake/M1",
    "alice/fake/m1/",
    "alice/../fake/m1",
    "../alice/fake/m1",
    "collection/../alice-own",
    "collection/alice-own/",
    "auto()",
    "auto(team",
    "auto(carol-own)",
    "%2Ffake%2Fm1",
    "fake%2Fm1",
    "collection/auto(team)",
    "platform/fake/m1",
    "nobody/fake/m1",
    "acme/fake/m9",
    "collection/nope",
    "alice\x00/fake/m1",
]

OK = frozenset((200, 503))  # routed (503: every usable member is cooling down or has no key)


class Oracle:
    """The SPEC's access rules over the table alone."""

    def __init__(self, table: RoutingTable) -> None:
        self.t = table
        self.handles = set(table.users) | set(table.organizations)

    def owners(self, caller: str) -> set[str]:
        return {caller, "platform", *self.t.users[caller].organizations}

    def conns(self, owners: set[str], model: str, handle: str | None) -> list[str]:
        return [
            cid
            for cid, c in self.t.connections.items()
            if model in c.models and c.owner in owners and (handle is None or c.owner == handle)
        ]

    def member_usable(self, caller: str, model_id: str, handle: str | None) -> bool:
        owners = self.owners(caller)
        if handle is not None and handle not in owners:
            return False
        return bool(self.conns(owners, model_id, handle))

    def collection(self, caller: str, name: str) -> frozenset[int]:
        c = self.t.collections.get(name)
        if c is None or (c.scope == "user" and c.owner != caller):
            return frozenset((404,))
        if c.scope == "organization" and c.owner not in self.t.users[caller].organizations:
            return frozenset((403,))
        if not any(self.member_usable(caller, m.model_id, m.handle) for m in c.members):
            return frozenset((403, 503))  # nothing usable: refused or no models
        return OK

    def expect(self, caller: str, name: str) -> frozenset[int]:
        t = self.t
        if not name:
            return frozenset((400,))  # `model` is required
        if name in t.aliases:
            return self.collection(caller, t.aliases[name])
        if name.startswith("auto(") and name.endswith(")"):
            target = t.aliases.get("auto-" + name[5:-1])
            return self.collection(caller, target) if target else frozenset((404,))
        if name.startswith("collection/"):
            rest = name[len("collection/") :]
            return self.collection(caller, t.aliases.get(rest, rest))
        head, _, rest = name.partition("/")
        if head in self.handles and rest in t.models:
            if head not in self.owners(caller):
                return frozenset((403,))
            return OK if self.conns(self.owners(caller), rest, head) else frozenset((404,))
        if name in t.models:
            return OK if self.conns(self.owners(caller), name, None) else frozenset((403,))
        return frozenset((404,))

    def forms(self) -> list[str]:
        models = sorted(self.t.models)
        names = [*models, *(f"{h}/{m}" for h in sorted(self.handles) for m in models)]
        names += [f"collection/{c}" for c in sorted(self.t.collections)]
        names += sorted(self.t.aliases)
        names += ["auto(team)", "auto(free)"]
        return names + TRICKS

    def visible_ids(self, caller: str) -> set[str]:
        ids = {m for m in self.t.models if self.conns(self.owners(caller), m, None)}
        visible = {n for n in self.t.collections if self.collection(caller, n) != frozenset((404,))}
        visible -= {n for n in visible if self.collection(caller, n) == frozenset((403,))}
        ids |= {f"collection/{n}" for n in visible}
        ids |= {a for a, target in self.t.aliases.items() if target in visible}
        return ids


def _call(
    gw: Running, method: str, path: str, who: str | None, body: Any = None
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=20)
    headers = {"Content-Type": "application/json"}
    if who is not None:
        headers["Authorization"] = f"Bearer {KEYS.get(who, who)}"
    conn.request(method, path, body=None if body is None else orjson.dumps(body), headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    parsed = json.loads(data) if data[:1] in (b"{", b"[") else data.decode()
    return resp.status, parsed


@pytest.fixture
def runners(loop_thread: LoopThread) -> Iterator[list[web.AppRunner]]:
    started: list[web.AppRunner] = []
    yield started
    for runner in started:
        loop_thread.stop(runner)


def test_the_access_matrix(
    loop_thread: LoopThread,
    fake: FakeUpstream,
    runners: list[web.AppRunner],
    capsys: pytest.CaptureFixture[str],
) -> None:
    gw = start_app(
        loop_thread, fake.port, runners, parts={"collections": COLLECTIONS}, mounts=[mount_explain]
    )
    oracle = Oracle(gw.table)
    forms = oracle.forms()
    checked = 0
    wrong: list[str] = []
    for caller in CALLERS:
        for name in forms:
            expected = oracle.expect(caller, name)
            body = {"model": name, "messages": [{"role": "user", "content": "hi"}]}
            status, answer = _call(gw, "POST", "/v1/chat/completions", caller, body)
            checked += 1
            if status not in expected:
                wrong.append(f"{caller} {name!r}: {status} not in {sorted(expected)}: {answer}")
            if status == 200:  # what answered is something the caller may use
                assert answer["_selected_model"] in gw.table.models
                used = answer.get("_selected_model")
                assert any(
                    gw.table.connections[c].owner in oracle.owners(caller)
                    for c in gw.table.model_connections[used]
                )
            # explain gives the same verdict, calling no provider
            status_e, explained = _call(gw, "POST", "/v1/route/explain", caller, body)
            checked += 1
            code = (explained.get("error") or {}).get("code") if status_e == 200 else None
            if expected == frozenset((403,)) and code != "access_denied":
                wrong.append(f"explain {caller} {name!r}: {code}")
            if expected == frozenset((404,)) and code not in (
                "model_not_found",
                "collection_not_found",
                "invalid_request",
            ):
                wrong.append(f"explain {caller} {name!r}: {code}")
            # a load_balancer naming it: models route like the name, collections are refused
            if "/" in name and not name.startswith("collection/") and name.strip() == name:
                lb = {
                    "messages": body["messages"],
                    "load_balancer": {"type": "weight_based", "models": [{"model": name}]},
                }
                status_lb, answer_lb = _call(gw, "POST", "/v1/chat/completions", caller, lb)
                checked += 1
                if status_lb not in expected | {400}:
                    wrong.append(f"lb {caller} {name!r}: {status_lb} {answer_lb}")
                if status_lb == 200 and status not in OK:
                    wrong.append(f"lb {caller} {name!r} answered but the name does not")
        # /v1/models lists exactly what the caller may use
        status, listed = _call(gw, "GET", "/v1/models", caller)
        checked += 1
        assert status == 200
        ids = {m["id"] for m in listed["data"]}
        if ids != oracle.visible_ids(caller):
            wrong.append(f"/v1/models {caller}: {sorted(ids ^ oracle.visible_ids(caller))}")
        # the collections API: the list, and each collection's detail
        status, page = _call(gw, "GET", "/api/user/model-collections", caller)
        checked += 1
        names = {c["name"] for c in page["collections"]}
        for name in gw.table.collections:
            verdict = oracle.collection(caller, name)
            if (name in names) != (verdict != frozenset((404,)) and verdict != frozenset((403,))):
                wrong.append(f"collections list {caller}: {name}")
            status, detail = _call(gw, "GET", f"/api/user/model-collections/{name}", caller)
            checked += 1
            want = {404} if verdict == frozenset((404,)) else {403} if verdict == {403} else {200}
            if status not in want:
                wrong.append(f"collection detail {caller} {name}: {status}")
            if status == 200:
                shown = {c["id"] for m in detail["models"] for c in m["health"]["connections"]}
                mine = {
                    cid
                    for cid, c in gw.table.connections.items()
                    if c.owner in oracle.owners(caller)
                }
                if not shown <= mine:
                    wrong.append(f"collection detail {caller} {name}: shows {shown - mine}")
    # unknown or missing keys: 401 everywhere, and nothing is revealed
    for who in (None, "key-mallory", "Bearer", "key-alice " + "x"):
        for path, method in (
            ("/v1/chat/completions", "POST"),
            ("/v1/models", "GET"),
            ("/api/user/model-collections", "GET"),
            ("/api/user/model-collections/team", "GET"),
            ("/v1/route/explain", "POST"),
        ):
            body = {"model": "fake/m1", "messages": [{"role": "user", "content": "hi"}]}
            status, answer = _call(gw, method, path, who, body if method == "POST" else None)
            checked += 1
            if status != 401:
                wrong.append(f"{who} {method} {path}: {status}")
    # /metrics without a token: no private connection or model is named
    status, text = _call(gw, "GET", "/metrics", None)
    checked += 1
    private = [cid for cid, c in gw.table.connections.items() if c.owner_kind != "platform"]
    assert status == 200
    assert not [cid for cid in private if f'"{cid}"' in text], text
    assert "alice" not in text and "acme" not in text
    assert wrong == [], "\n".join(wrong)
    with capsys.disabled():
        print(
            f"\naccess matrix: {len(CALLERS)} callers x {len(forms)} model forms, "
            f"{checked} checks against the live server"
        )
    assert checked > 500
