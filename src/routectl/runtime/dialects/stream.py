"""The interface of a stream translator: upstream SSE bytes in, the client's SSE bytes out."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Chain", "ChunkTranslator"]


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


class Chain:
    """Two stream translators one after the other (e.g. upstream -> OpenAI chunks -> the client's
    format, or a model stamp and then a usage watch)."""

    __slots__ = ("first", "second")

    def __init__(self, first: ChunkTranslator, second: ChunkTranslator) -> None:
        self.first = first
        self.second = second

    @property
    def error(self) -> str | None:
        return self.first.error or self.second.error

    @property
    def usage(self) -> dict[str, int] | None:
        return self.first.usage or self.second.usage

    def feed(self, data: bytes) -> bytes:
        return self.second.feed(self.first.feed(data))

    def close(self) -> bytes:
        return self.second.feed(self.first.close()) + self.second.close()
