"""The OpenAI Responses API format (`POST /v1/responses`), stateless: parse a request, shape its
answers, streams and errors.

To an `openai` upstream whose model declares the `responses` capability the request passes
through (only `model` rewritten: `{base_url}/responses`); to any other upstream it is translated
to chat completions (`responses_to_chat`) and the answer back (`chat_to_responses`,
`responses_stream`). The gateway stores nothing, so what needs stored state is refused with a
400 before routing. Errors are OpenAI's.
"""

from __future__ import annotations

from typing import Any

import orjson

from routectl.runtime.dialects.stream import ChunkTranslator
from routectl.runtime.errors import RoutingError
from routectl.runtime.ingress.chat_to_responses import to_response
from routectl.runtime.ingress.openai_chat import OpenAIChat, estimate_facts
from routectl.runtime.ingress.openai_stream import ModelStamp
from routectl.runtime.ingress.responses_stream import ResponsesEvents, error_event
from routectl.runtime.ingress.responses_to_chat import to_chat
from routectl.runtime.plan import RequestFacts
from routectl.runtime.request import Call, bad_request, take_routing_keys

__all__ = ["RESPONSES", "OpenAIResponses", "parse_responses_request"]

RESPONSES = "openai.responses"


class OpenAIResponses(OpenAIChat):
    """One Responses request's format: it keeps the request, whose fields every answer repeats."""

    name = RESPONSES

    def __init__(self, request: dict[str, Any], request_id: str, created: int) -> None:
        self.request = request
        self.request_id = request_id
        self.created = created
        self._events: ResponsesEvents | None = None

    def chat_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """The request as OpenAI chat (raises Untranslatable, a 400, for what has no equivalent)."""
        return to_chat(body)

    def answer(self, chat: dict[str, Any]) -> dict[str, Any]:
        """A `chat.completion` as a `response`."""
        return to_response(chat, self.request)

    def usage(self, answer: dict[str, Any]) -> Any:
        """OpenAI-style usage of a `response`."""
        usage = answer.get("usage")
        if not isinstance(usage, dict):
            return None
        return {
            "prompt_tokens": usage.get("input_tokens"),
            "completion_tokens": usage.get("output_tokens"),
        }

    def stream(self, call: Call, model_id: str) -> ChunkTranslator | None:
        """OpenAI chunks -> Responses events."""
        self._events = ResponsesEvents(
            self.request, model_id, "resp_" + self.request_id, self.created
        )
        return self._events

    def relay(self, call: Call, model_id: str) -> ChunkTranslator | None:
        """A native Responses stream passes as it came, the routed model id in each event."""
        return ModelStamp(model_id)

    def stream_error(self, error: RoutingError) -> bytes:
        """An `error` event, numbered after the events already sent."""
        sequence = self._events.sequence if self._events is not None else 0
        return error_event(sequence, error.message, error.code)


_STATEFUL = "routectl keeps no conversation state"


def _refuse_state(body: dict[str, Any]) -> None:
    if body.get("previous_response_id") is not None:
        raise RoutingError(
            "invalid_request",
            400,
            f"previous_response_id is not supported: {_STATEFUL}; send the whole conversation "
            "in `input` (earlier outputs included) instead",
            param="previous_response_id",
        )
    if body.get("store") is True:
        raise RoutingError(
            "invalid_request",
            400,
            f"store: true is not supported: {_STATEFUL}; leave store out or set it to false",
            param="store",
        )
    for key in ("conversation", "background"):
        if body.get(key) not in (None, False):
            raise RoutingError(
                "invalid_request", 400, f"{key} is not supported: {_STATEFUL}", param=key
            )


def _facts(body: dict[str, Any]) -> RequestFacts:
    """The chat estimate over the request's messages (images and tools included)."""
    try:
        chat = to_chat({k: v for k, v in body.items() if k != "stream"})
    except RoutingError:  # untranslatable: estimate from the text alone
        chat = {"messages": [{"role": "user", "content": str(body.get("input"))}]}
    facts = estimate_facts(chat)
    max_out = body.get("max_output_tokens")
    return RequestFacts(
        prompt_tokens=facts.prompt_tokens,
        needs_tools=bool(body.get("tools")),
        needs_vision=facts.needs_vision,
        max_output_tokens=max_out if isinstance(max_out, int) and max_out > 0 else 0,
    )


def parse_responses_request(raw: bytes, request_id: str, created: int) -> Call:
    """Decode and check a Responses request; RoutingError(invalid_request) when it is malformed
    or needs state the gateway does not keep."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    _refuse_state(body)
    value = body.get("input")
    if not (isinstance(value, str) and value) and not (isinstance(value, list) and value):
        raise RoutingError(
            "invalid_request",
            400,
            "'input' is required: a string or a non-empty list of input items",
            param="input",
        )
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be a boolean")
    facts = _facts(body)
    load_balancer, overrides = take_routing_keys(body)
    model = body.get("model")
    if load_balancer is None and (not isinstance(model, str) or not model):
        raise RoutingError(
            "invalid_request", 400, "'model' is required and must be a string", param="model"
        )
    return Call(
        OpenAIResponses(body, request_id, created),
        body,
        model if isinstance(model, str) else "",
        stream,
        facts,
        load_balancer,
        overrides,
    )
