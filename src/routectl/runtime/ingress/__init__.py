"""Client formats (ingress): how a client speaks to routectl, behind one interface.

The upstream dialects read and answer OpenAI chat (the canonical form); a client format turns its
requests into that form when the chosen upstream does not speak the client's format natively, and
turns the canonical answer (and stream) back into what the client expects. When the upstream's
dialect is `native` for the format, the request and answer pass through unchanged.

Adding a format: one module here (parse its body into a `Call`, implement `ClientFormat`), its
route in the app, and a `native` name on the dialects that speak it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from routectl.runtime.dialects.stream import ChunkTranslator
from routectl.runtime.errors import RoutingError

if TYPE_CHECKING:
    from routectl.runtime.request import Call

__all__ = ["ClientFormat"]


class ClientFormat(Protocol):
    """One request/answer format a client may speak."""

    @property
    def name(self) -> str:
        """e.g. "openai.chat"; a dialect whose `native` equals it gets the body as sent."""
        ...

    @property
    def id_header(self) -> str | None:
        """A header that carries the request id besides `x-request-id` (Anthropic: request-id)."""
        ...

    def chat_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """The request as an OpenAI chat body (for upstreams that do not speak this format)."""
        ...

    def answer(self, chat: dict[str, Any]) -> dict[str, Any]:
        """A canonical `chat.completion` as this format's answer."""
        ...

    def stamp(self, answer: dict[str, Any], model_id: str, fields: dict[str, Any]) -> None:
        """Set the routed model and add routectl's `_...` fields to an answer in this format."""
        ...

    def usage(self, answer: dict[str, Any]) -> Any:
        """The OpenAI-style usage (`prompt_tokens`, `completion_tokens`) of an answer, if any."""
        ...

    def stream(self, call: Call, model_id: str) -> ChunkTranslator | None:
        """How to turn OpenAI chunks into this format's stream; None when they are its stream."""
        ...

    def relay(self, call: Call, model_id: str) -> ChunkTranslator | None:
        """A watcher of a native stream that passes through (its usage for the access log, the
        routed `model_id` stamped where the format names the model); None: nothing to do."""
        ...

    def error_body(self, error: RoutingError) -> dict[str, Any]:
        """An error answer in this format's shape."""
        ...

    def stream_error(self, error: RoutingError) -> bytes:
        """An error in the middle of a stream, as this format's SSE event."""
        ...

    def foreign_error(self, status: int, body: bytes) -> bytes:
        """An upstream's error answer, from a dialect that does not speak this format natively."""
        ...
