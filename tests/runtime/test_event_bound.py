"""replies.event_bound: each server-sent event of a relayed stream stays within the limit, counted
across chunks (an event may end in a later chunk than it began)."""

from __future__ import annotations

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
