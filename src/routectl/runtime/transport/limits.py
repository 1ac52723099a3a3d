"""The lean client's bounds, in one place."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client accepts and keeps.

    `max_body_bytes` bounds a body read whole (`read()`: JSON answers and error bodies); a stream
    read chunk by chunk (`content.readany()`) is bounded in memory by `high_water` instead, since
    reading pauses while that much is buffered unread.
    """

    max_connections: int = 1000  # open connections, all origins together (idle included); 0: none
    keepalive_s: float = 30.0  # an idle pooled connection is closed after this long
    max_body_bytes: int = 32 * MIB  # SPEC §5's default of --max-response-bytes
    max_header_bytes: int = 64 * 1024  # status line excluded: names and values together
    max_headers: int = 256
    high_water: int = 256 * 1024  # unread body bytes at which reading from the socket pauses
    low_water: int = 64 * 1024  # ... and resumes
