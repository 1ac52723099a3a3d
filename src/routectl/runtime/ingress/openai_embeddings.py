"""The OpenAI Embeddings format (`POST /v1/embeddings`): parse a request; answers pass through.

Only upstreams with an embeddings API take it (`openai`: `{base_url}/embeddings`, and `echo`);
there is nothing to translate it to, so the other candidates are left out of the plan
(translatable.py) and the answer is the upstream's, `model` and the `_...` fields set as for
chat. Errors are OpenAI's.
"""

from __future__ import annotations

from typing import Any

import orjson

from routectl.runtime.dialects.echo_embeddings import embedding_inputs
from routectl.runtime.dialects.stream import ChunkTranslator
from routectl.runtime.errors import RoutingError
from routectl.runtime.ingress.openai_chat import OpenAIChat
from routectl.runtime.plan import RequestFacts
from routectl.runtime.request import Call, bad_request, take_routing_keys

__all__ = ["OPENAI_EMBEDDINGS", "OpenAIEmbeddings", "parse_embeddings_request"]

EMBEDDINGS = "openai.embeddings"


class OpenAIEmbeddings(OpenAIChat):
    """`POST /v1/embeddings`: OpenAI's errors and stamping; no translation, no stream."""

    name = EMBEDDINGS

    def chat_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """No chat equivalent: such a candidate is left out of the plan."""
        raise RoutingError(
            "invalid_request",
            400,
            "embeddings can be sent only to an OpenAI-compatible upstream or echo",
            param="model",
        )

    def usage(self, answer: dict[str, Any]) -> Any:
        """Prompt tokens (an embedding has no completion)."""
        usage = answer.get("usage")
        prompt = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        return (
            {"prompt_tokens": prompt, "completion_tokens": 0} if isinstance(prompt, int) else None
        )

    def stream(self, call: Call, model_id: str) -> ChunkTranslator | None:
        """Embeddings are not streamed."""
        return None

    def relay(self, call: Call, model_id: str) -> ChunkTranslator | None:
        """Embeddings are not streamed."""
        return None


OPENAI_EMBEDDINGS = OpenAIEmbeddings()


def _tokens(value: Any) -> int:
    """The gateway's estimate of the input's tokens: characters / 4 per text, each token of a
    token array as one."""
    if isinstance(value, str):
        return max(1, len(value) // 4)
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return len(value)
    if isinstance(value, list):
        return sum(_tokens(v) for v in value)
    return 0


def parse_embeddings_request(raw: bytes) -> Call:
    """Decode and check an embeddings request; RoutingError(invalid_request) when malformed."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    if embedding_inputs(body.get("input")) is None:
        raise RoutingError(
            "invalid_request",
            400,
            "'input' is required: a string, a list of strings, a token array or a list of "
            "token arrays, none of them empty",
            param="input",
        )
    if body.get("encoding_format", "float") not in ("float", "base64"):
        raise RoutingError(
            "invalid_request",
            400,
            "'encoding_format' must be 'float' or 'base64'",
            param="encoding_format",
        )
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1
    ):
        raise RoutingError(
            "invalid_request", 400, "'dimensions' must be a positive integer", param="dimensions"
        )
    facts = RequestFacts(prompt_tokens=_tokens(body["input"]))
    load_balancer, overrides = take_routing_keys(body)
    model = body.get("model")
    if load_balancer is None and (not isinstance(model, str) or not model):
        raise RoutingError(
            "invalid_request", 400, "'model' is required and must be a string", param="model"
        )
    return Call(
        OPENAI_EMBEDDINGS,
        body,
        model if isinstance(model, str) else "",
        False,
        facts,
        load_balancer,
        overrides,
    )
