"""Echo's embeddings: a deterministic unit vector per input, so a fresh checkout can try
`/v1/embeddings` with no key. The same text always gives the same vector (a hash of it), and
different texts differ; the vectors carry no meaning. Pure.

`dimensions` as the request asks (1-3072), else 16; `encoding_format: base64` as OpenAI sends
it (little-endian float32, what the SDKs decode: the openai SDK asks for it by default).
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

__all__ = ["DEFAULT_DIMENSIONS", "echo_embeddings", "embedding_inputs"]

DEFAULT_DIMENSIONS = 16
_MAX_DIMENSIONS = 3072  # text-embedding-3-large's size
_SCALE = 2.0 / 0xFFFFFFFF


def embedding_inputs(value: Any) -> list[str] | None:
    """The request's `input` as texts (a token array reads as its numbers), or None when it is
    not one of OpenAI's four forms: a string, strings, a token array, token arrays."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(v, str) for v in value):
        return list(value)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return [" ".join(map(str, value))]
    if all(isinstance(v, list) and v and all(isinstance(t, int) for t in v) for v in value):
        return [" ".join(map(str, v)) for v in value]
    return None


def _vector(text: str, dimensions: int) -> list[float]:
    raw = text.encode()
    values = []
    for i in range(dimensions):
        word = int.from_bytes(hashlib.sha256(i.to_bytes(4, "little") + raw).digest()[:4], "little")
        values.append(word * _SCALE - 1.0)
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def echo_embeddings(body: dict[str, Any], model: str, prompt_tokens: int) -> dict[str, Any]:
    """An embeddings answer (`CreateEmbeddingResponse`) for a request body already checked."""
    texts = embedding_inputs(body.get("input")) or []
    size = body.get("dimensions")
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= _MAX_DIMENSIONS:
        size = DEFAULT_DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vector = _vector(text, size)
        embedding: Any = vector
        if as_base64:
            embedding = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
