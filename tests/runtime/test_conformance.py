"""The schema checks every gateway test runs (conformance.py) catch what they must, and the
vendored schemas are OpenAI's, as `openai_schema/vendor.py` extracts them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conformance import Answer, check_answer
from openai_schema import vendor

GOOD_COMPLETION = {
    "id": "c",
    "object": "chat.completion",
    "created": 1,
    "model": "echo/e1",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hi", "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ],
}


def answer(path: str, body: object, status: int = 200, sse: bool = False) -> Answer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    ctype = "text/event-stream" if sse else "application/json"
    return Answer("POST", path, status, ctype, False, bytearray(raw))


def test_a_conforming_answer_passes_and_broken_ones_are_caught() -> None:
    assert check_answer(answer("/v1/chat/completions", GOOD_COMPLETION)) == []
    no_refusal = json.loads(json.dumps(GOOD_COMPLETION))
    del no_refusal["choices"][0]["message"]["refusal"]
    assert check_answer(answer("/v1/chat/completions", no_refusal)) == [
        "choices/0/message: 'refusal' is a required property"
    ]
    old_error = {"error": {"code": "invalid_request", "message": "bad"}}
    problems = check_answer(answer("/v1/chat/completions", old_error, status=400))
    assert "error: 'type' is a required property" in problems
    chunk = b'data: {"id":"c","object":"chat.completion.chunk","created":1,"choices":[]}\n\n'
    problems = check_answer(answer("/v1/chat/completions", chunk + b"data: [DONE]\n\n", sse=True))
    assert problems and "'model' is a required property" in problems[0]
    event = b'event: x\ndata: {"type":"response.nonsense","sequence_number":0}\n\n'
    assert check_answer(answer("/v1/responses", event, sse=True)) != []
    assert check_answer(answer("/v1/models/a/b", {"id": "a/b", "object": "model"}, 200)) != []
    # nullable: true reads as "or null": a stream chunk's finish_reason may be null
    final = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {}, "finish_reason": None, "logprobs": None}],
    }
    body = b"data: " + json.dumps(final).encode() + b"\n\n"
    assert check_answer(answer("/v1/chat/completions", body, sse=True)) == []
    # routes OpenAI does not define are not checked
    assert check_answer(answer("/v1/messages", {"whatever": 1})) == []


@pytest.mark.slow  # reads the 3 MB YAML document
def test_the_vendored_schemas_are_the_references_subset() -> None:
    if not vendor.REFERENCE.exists():
        pytest.skip(
            f"{vendor.REFERENCE} is not beside the repository: the vendored copy in "
            "tests/runtime/openai_schema/ (which every schema check uses) is compared with it "
            "where it is"
        )
    document = yaml.load(vendor.REFERENCE.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    assert vendor.VENDORED.read_text(encoding="utf-8") == vendor.render(vendor.extract(document)), (
        "run: python tests/runtime/openai_schema/vendor.py"
    )


def test_the_license_travels_with_the_vendored_schemas() -> None:
    license_text = (Path(vendor.HERE) / "LICENSE-openai-openapi").read_text()
    assert license_text.startswith("The MIT License") and "Copyright (c) OpenAI" in license_text
    assert json.loads(vendor.VENDORED.read_text())["info"]["license"] == "MIT"
