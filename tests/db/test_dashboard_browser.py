"""`/dashboard` in headless Chromium (Debian's, driven by Playwright) against a live `routectl serve`
with traffic: what the page shows is checked against what was sent, and a screenshot of it is
saved (`make screenshot`: docs/dashboard.png, which the README shows)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from .usage_serve import KEYS, serving, traffic, usage_table

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = os.environ.get("ROUTECTL_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserContext]:
    # `make test` installs Debian's chromium; a missing browser is a failure, never a skip
    assert Path(CHROMIUM).is_file(), (
        f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium) as root; "
        "otherwise install Debian's chromium package or set ROUTECTL_CHROMIUM"
    )
    profile = tempfile.mkdtemp(prefix="routectl-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=FLAGS,
                viewport={"width": 1280, "height": 900},
            )
            yield context
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _sign_in(page: Page, port: int, key: str) -> None:
    page.goto(f"http://127.0.0.1:{port}/dashboard")
    page.fill("#key", key)
    page.click("#login button")


def test_the_dashboard_shows_collections_shares_health_and_usage(
    browser: BrowserContext, tmp_path: Path
) -> None:
    table = usage_table()
    with serving(table, tmp_path) as s:
        answers = traffic(s)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        failed: list[str] = []  # resources that failed to load (the wrong key's 401 is expected)
        page.on(
            "console",
            lambda msg: (
                (failed if "Failed to load" in msg.text else errors).append(msg.text)
                if msg.type == "error"
                else None
            ),
        )

        # a wrong key: the page says so and shows nothing
        _sign_in(page, s.port, "rk-wrong")
        page.wait_for_selector("#error:has-text('invalid_api_key')")
        assert page.is_hidden("#board")

        _sign_in(page, s.port, KEYS["alice"])
        page.wait_for_selector("body[data-loaded=true]")
        assert page.text_content("#table-sha") == table.sha256[:12]
        assert page.get_attribute("#table-sha", "title") == table.sha256
        assert page.text_content("#caller") == "alice"
        assert page.text_content("#table-age").endswith(" s")  # type: ignore[union-attr]

        # alice (acme-corp) sees the system collections and her organization's
        names = page.eval_on_selector_all(".collection", "els => els.map(e => e.dataset.name)")
        assert names == ["flash2.5", "org-shared-models", "split", "steady"]
        card = ".collection[data-name='split'] "
        assert page.text_content(card + ".strategy") == "weighted"
        assert page.text_content(card + "tr[data-model='echo/fast-a'] .configured") == "75.0%"
        assert page.text_content(card + "tr[data-model='echo/fast-b'] .configured") == "25.0%"
        # observed: what the 8 requests to collection/split were answered by
        split = Counter(
            a.headers["x-routectl-selected-model"]
            for a in answers[21:29]  # traffic(): the 8 requests of collection/split
        )
        assert split == {"echo/fast-a": 6, "echo/fast-b": 2}
        assert page.text_content(card + "tr[data-model='echo/fast-a'] .observed") == "75.0%"
        assert page.text_content(card + "tr[data-model='echo/fast-a'] .requests") == "6"
        assert page.text_content(card + ".window-requests") == "8"

        # health: the unreachable member of `steady` failed twice (below allowed_fails: failing)
        steady = ".collection[data-name='steady'] "
        gone = page.get_attribute(steady + "tr[data-model='gone/m1'] .badge", "data-state")
        assert gone == "failing"
        assert page.text_content(steady + "tr[data-model='gone/m1'] .badge") == "failing (2 recent)"
        assert page.get_attribute(steady + "tr[data-model='echo/big'] .badge", "data-state") == "ok"
        assert page.text_content(steady + "tr[data-model='gone/m1'] .configured") == "100.0%"

        # a third failure opens a cooldown: the page shows until when
        s.call("collection/steady", "bob")
        page.wait_for_selector(steady + "tr[data-model='gone/m1'] .badge[data-state=cooling_down]")
        text = page.text_content(steady + "tr[data-model='gone/m1'] .badge") or ""
        assert text.startswith("cooling down until ") and text.endswith(" UTC")

        # usage over the last minutes: requests and cost of what alice may see
        visible = [
            a for a in answers if a.status == 200 and a.headers.get("x-routectl-selected-model")
        ]
        assert len(visible) > 0
        page.wait_for_function("document.querySelectorAll('#totals-chart rect.bar').length > 0")
        cost = page.text_content("#cost") or ""
        assert cost.startswith("$") and float(cost[1:]) > 0
        assert float(page.text_content("#rate") or "0") > 0
        flash_requests = page.text_content(".collection[data-name='flash2.5'] .window-requests")
        assert flash_requests == "15"
        assert errors == []
        assert len(failed) == 1 and "401" in failed[0]

        page.set_viewport_size({"width": 1280, "height": 1100})
        time.sleep(0.3)
        # `make screenshot` keeps it as docs/dashboard.png; `make test` leaves docs/ alone
        shot = Path(os.environ.get("ROUTECTL_DASHBOARD_SCREENSHOT") or tmp_path / "dashboard.png")
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 20_000

        # carol (no organization) does not see acme-corp's collection
        page.click("#logout")
        _sign_in(page, s.port, KEYS["carol"])
        page.wait_for_selector("body[data-loaded=true] .collection")
        names = page.eval_on_selector_all(".collection", "els => els.map(e => e.dataset.name)")
        assert names == ["flash2.5", "split", "steady"]
        page.close()
