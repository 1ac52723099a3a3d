"""/dashboard's routes: the page is static and open, its data needs a key and shows only what the
collections API shows that caller. (The page in a real browser: tests/db/test_dashboard_browser.py.)"""

from __future__ import annotations

import json

import pytest
from conftest import FakeUpstream
from test_e2e import Start, call, chat, coll

pytestmark = pytest.mark.e2e


def test_the_page_is_static_and_its_data_needs_a_key(start: Start, fake: FakeUpstream) -> None:
    team = coll(
        "team", "round_robin", "[{model: fake/m1}]", scope="organization", extra="    owner: acme\n"
    )
    gw = start(collections=team)
    status, headers, page = call(gw, "GET", "/dashboard", who=None)
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in headers["content-security-policy"]
    assert b'<script src="/dashboard/dashboard.js">' in page and b"team" not in page
    status, headers, script = call(gw, "GET", "/dashboard/dashboard.js", who=None)
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert b"/dashboard/data" in script and b"http" not in script.replace(
        b"http://www.w3.org/2000/svg", b""
    )

    status, _, body = call(gw, "GET", "/dashboard/data", who=None)
    assert status == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"

    chat(gw, "collection/team", "alice")
    status, headers, body = call(gw, "GET", "/dashboard/data", who="alice")
    assert status == 200 and headers["cache-control"] == "no-store"
    data = json.loads(body)
    assert data["table"]["sha256"] == gw.table.sha256 and data["table"]["age_s"] >= 0
    (team_view,) = (c for c in data["collections"] if c["name"] == "team")
    assert team_view["strategy"] == "round_robin"
    assert team_view["members"][0]["requests"] == 1
    assert team_view["members"][0]["observed_share"] == 1.0
    assert team_view["members"][0]["health"] == {"state": "ok", "reason": None}
    assert sum(b["requests"] for b in data["totals"]) == 1
    assert len(data["totals"]) == data["window_s"] // data["bucket_s"] == 90

    # carol is not in acme: the organization's collection is not hers to see
    _, _, body = call(gw, "GET", "/dashboard/data", who="carol")
    assert [c["name"] for c in json.loads(body)["collections"]] == ["auto-free"]
