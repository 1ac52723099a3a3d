"""`serve --redis-url` and the length of a limit's minute: what is accepted and what is said."""

from __future__ import annotations

import sys

import pytest

from routectl.runtime.limits import InProcessBackend, backend_for
from routectl.runtime.limits.settings import MINUTE_ENV, LimitSettings, limit_settings_for


def test_without_a_url_the_counters_are_in_the_process() -> None:
    settings = limit_settings_for(None, {})
    assert settings == LimitSettings(None, 60.0)
    assert isinstance(backend_for(settings), InProcessBackend)


def test_the_minute_can_be_shortened_for_tests_and_demos_within_bounds() -> None:
    assert limit_settings_for(None, {MINUTE_ENV: "6"}).minute_s == 6.0
    for bad in ("0", "abc", "-1", "7200"):
        with pytest.raises(ValueError, match=MINUTE_ENV):
            limit_settings_for(None, {MINUTE_ENV: bad})


def test_a_redis_url_without_the_client_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # as in `pip install routectl` alone
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ValueError, match=r"pip install 'routectl\[redis\]'"):
        limit_settings_for("redis://127.0.0.1:6379/0", {})
