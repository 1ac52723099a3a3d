"""replies.event_bound: each server-sent event of a relayed stream stays within the limit, counted
across chunks (an event may end in a later chunk than it began)."""

from __future__ import annotations

import random

import pytest

from routectl.runtime.replies import TooLarge, event_bound


def test_the_unfinished_event_is_counted_across_chunks() -> None:
    pending = event_bound(0, b"data: 1\n\ndata: 2", 100)
    assert pending == len(b"data: 2")
    pending = event_bound(pending, b"2345", 100)  # no event end in it: the event grows
    assert pending == len(b"data: 22345")
    assert event_bound(pending, b"\n\n", 100) == 0  # ended
    # a CRLF blank line counts its last two bytes to the next event (a bound, not a parse)
    assert event_bound(0, b"data: x\r\n\r\ndata", 100) == len(b"\r\ndata")


def test_an_event_past_the_limit_is_too_large_wherever_it_ends() -> None:
    with pytest.raises(TooLarge):
        event_bound(0, b"x" * 11, 10)  # unfinished and already too long
    with pytest.raises(TooLarge):
        event_bound(8, b"xyz\n\n", 10)  # began in an earlier chunk, ended here past the limit
    assert event_bound(8, b"xy\n\n", 10) == 0  # exactly at the limit
    assert event_bound(0, b"x" * 10, 10) == 10


def test_the_last_event_end_is_found_as_by_searching_both_ends_everywhere() -> None:
    # event_bound looks for a CRLF end only after the last LF end; on every short mix of the
    # bytes that matter, that finds what searching both over the whole chunk finds
    def reference(pending: int, chunk: bytes, limit: int) -> int:
        end = max(chunk.rfind(b"\n\n"), chunk.rfind(b"\r\n\r\n"))
        pending = pending + len(chunk) if end < 0 else len(chunk) - end - 2
        return pending

    rng = random.Random(7)
    for _ in range(20_000):
        chunk = bytes(rng.choice(b"a\r\n") for _ in range(rng.randint(0, 12)))
        assert event_bound(3, chunk, 1_000_000) == reference(3, chunk, 1_000_000), chunk
