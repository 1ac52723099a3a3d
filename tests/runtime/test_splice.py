"""splice_answer (runtime/splice.py, a phase-2 prototype) against the re-encoding it would replace.

For every upstream answer of the corpus, the spliced bytes decode to exactly what decoding, stamping
(`OPENAI_CHAT.stamp`) and re-encoding gives, keys in the same order; or the splice declines (None)
and the caller would re-encode. The corpus: the shapes real OpenAI-compatible upstreams send
(compact, pretty-printed, escaped, tool calls, logprobs, model not first, extra keys) and the
traps (`"model"` in content, as a value, escaped, duplicated, nested; keys starting with `_`).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from routectl.runtime.ingress.openai_chat import OPENAI_CHAT
from routectl.runtime.splice import splice_answer

MODEL = "openai/gpt-4o-mini"
FIELDS: dict[str, Any] = {
    "_collection_routed": True,
    "_collection_name": "team-rr",
    "_routing_strategy": "round_robin",
    "_selected_model": MODEL,
    "_model_alternatives": [{"model": "a/b", "usage": 3}],
    "_routing_table": "sha256:" + "ab" * 32,
}

_BASE: dict[str, Any] = {
    "id": "chatcmpl-123",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello!"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
}


def _with(**changes: Any) -> dict[str, Any]:
    return {**_BASE, **changes}


def _content(text: str) -> dict[str, Any]:
    return _with(
        choices=[
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ]
    )


# (name, raw bytes, whether the splice is expected to apply)
CORPUS: list[tuple[str, bytes, bool]] = [
    ("compact", orjson.dumps(_BASE), True),
    ("pretty", json.dumps(_BASE, indent=2).encode(), True),
    ("spaces around colons", json.dumps(_BASE, separators=(" , ", " : ")).encode(), True),
    ("trailing newline", orjson.dumps(_BASE) + b"\n\n", True),
    ("leading whitespace", b" \r\n\t" + orjson.dumps(_BASE), True),
    ("ascii escapes", json.dumps(_content('héllo 👋 "quoted" \\ /')).encode(), True),
    ("raw utf-8", orjson.dumps(_content("héllo 👋 — ✓")), True),
    (
        "model last",
        orjson.dumps({k: v for k, v in _BASE.items() if k != "model"} | {"model": "m"}),
        True,
    ),
    (
        "model first",
        orjson.dumps({"model": "m"} | {k: v for k, v in _BASE.items() if k != "model"}),
        True,
    ),
    ("model with escapes", orjson.dumps(_with(model='vendor\\/m "x" \u00e9')), True),
    ("model escaped as unicode", b'{"id":"x","model":"\\u0067pt","choices":[]}', True),
    ("extra keys", orjson.dumps(_with(system_fingerprint="fp_1", service_tier="default")), True),
    (
        "tool calls",
        orjson.dumps(
            _with(
                choices=[
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": None,
                            "tool_calls": [
                                {
                                    "id": "call_1",
                                    "type": "function",
                                    "function": {
                                        "name": "f",
                                        "arguments": '{"a": [1, {"b": "}"}]}',
                                    },
                                }
                            ],
                        },
                        "finish_reason": "tool_calls",
                    }
                ]
            )
        ),
        True,
    ),
    (
        "logprobs and nesting",
        orjson.dumps(
            _with(
                choices=[
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "[{]}"},
                        "logprobs": {"content": [{"token": "{", "logprob": -0.1, "bytes": [123]}]},
                        "finish_reason": "stop",
                    }
                ]
            )
        ),
        True,
    ),
    ("floats and big numbers", b'{"model":"m","x":1.0e5,"y":-0.0,"z":12345678901234567890}', True),
    ("empty object but model", b'{"model":"m"}', True),
    ("many choices", orjson.dumps(_with(choices=[_BASE["choices"][0]] * 50)), True),
    ("large answer", orjson.dumps(_content("word " * 50_000)), True),
    # the splice must decline these (None): re-encoding is the only safe answer
    ("no model", orjson.dumps({k: v for k, v in _BASE.items() if k != "model"}), False),
    ("model null", orjson.dumps(_with(model=None)), False),
    ("model a number", orjson.dumps(_with(model=4)), False),
    ("model twice", b'{"model":"a","id":"x","model":"b"}', False),
    ("model only nested", b'{"id":"x","choices":[{"model":"m"}]}', False),
    ("nested model first", b'{"meta":{"model":"inner"},"model":"outer"}', False),
    ("model as a value", b'{"object":"model","id":"m"}', False),
    ("model in content, escaped", orjson.dumps(_content('the "model" said')), True),
    ("model as content", orjson.dumps(_content("model")), False),
    ("escaped key ending in model", b'{"say \\"model": "x", "id": 1}', False),
    ("existing underscore key", orjson.dumps(_with(_selected_model="upstream's")), False),
    ("underscore text", orjson.dumps(_content('"_hidden"')), False),
    ("an array", b'[{"model":"m"}]', False),
]


def _reencoded(raw: bytes) -> bytes:
    data = orjson.loads(raw)
    OPENAI_CHAT.stamp(data, MODEL, dict(FIELDS))
    return orjson.dumps(data)


def _items(value: Any) -> Any:
    """The decoded value with every object as a list of pairs: equality then checks key order."""
    if isinstance(value, dict):
        return [(k, _items(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_items(v) for v in value]
    return value


@pytest.mark.parametrize(("name", "raw", "applies"), CORPUS, ids=[c[0] for c in CORPUS])
def test_splice_equals_the_reencoded_answer(name: str, raw: bytes, applies: bool) -> None:
    spliced = splice_answer(raw, MODEL, dict(FIELDS))
    if not applies:
        assert spliced is None, name
        return
    assert spliced is not None, name
    expected = orjson.loads(_reencoded(raw))
    got = orjson.loads(spliced)  # valid JSON, and the same keys in the same order
    assert _items(got) == _items(expected)
    assert list(got)[-len(FIELDS) :] == list(FIELDS)
    assert got["model"] == MODEL


def test_splice_keeps_every_other_byte() -> None:
    raw = json.dumps(_BASE, indent=2).encode()
    spliced = splice_answer(raw, MODEL, {"_selected_model": MODEL})
    assert spliced is not None
    before, _, after = raw.partition(b'"gpt-4o-mini-2024-07-18"')
    assert spliced.startswith(before + orjson.dumps(MODEL))
    assert spliced.endswith(b'  },"_selected_model":"openai/gpt-4o-mini"\n}')
    assert after[: after.rindex(b"}")].rstrip() in spliced


def test_no_fields_and_non_underscore_fields() -> None:
    raw = orjson.dumps(_BASE)
    spliced = splice_answer(raw, MODEL, {})
    assert spliced is not None and orjson.loads(spliced) == {**_BASE, "model": MODEL}
    assert splice_answer(raw, MODEL, {"model": "x"}) is None  # only `_...` fields are appended
