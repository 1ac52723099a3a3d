"""The interface of a stream translator: upstream SSE bytes in, the client's SSE bytes out."""

from __future__ import annotations

from typing import Protocol

__all__ = ["ChunkTranslator"]


class ChunkTranslator(Protocol):
    """Translates a stream event by event as its bytes arrive (mutable parser state)."""

    @property
    def error(self) -> str | None:
        """The kind of an in-stream error, once one was seen."""
        ...

    @property
    def usage(self) -> dict[str, int] | None:
        """OpenAI usage, once the upstream reported it."""
        ...

    def feed(self, data: bytes) -> bytes:
        """Translate every complete event in `data` (plus what was buffered); keep the rest."""
        ...

    def close(self) -> bytes:
        """What to send when the upstream body ended (an error event if it ended too early)."""
        ...
