"""Extract the schemas routectl's answers are checked against from OpenAI's OpenAPI document.

    python tests/runtime/openai_schema/vendor.py [PATH/TO/openai-openapi.yaml]

writes `schemas.json` beside this file: the `components.schemas` entries named in `ROOTS` and
every schema they reference, as the document has them (MIT, LICENSE-openai-openapi beside it).
The default source is `../shared/reference/openai-openapi.yaml` next to the repository;
`test_conformance.py` checks that the vendored copy is what this script extracts from it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REFERENCE = HERE.parents[3] / "shared" / "reference" / "openai-openapi.yaml"
VENDORED = HERE / "schemas.json"
ROOTS = (
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "CreateEmbeddingResponse",
    "ErrorResponse",
    "ListModelsResponse",
    "Model",
    "Response",
    "ResponseStreamEvent",
)


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value.rsplit("/", 1)[-1])
            else:
                _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def extract(document: dict[str, Any]) -> dict[str, Any]:
    """`ROOTS` and their closure under `$ref`, under `components.schemas`."""
    schemas = document["components"]["schemas"]
    seen: set[str] = set()
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        found: set[str] = set()
        _refs(schemas[name], found)
        todo.extend(found - seen)
    version = document["info"]["version"]
    return {
        "info": {"source": "openai/openai-openapi", "version": version, "license": "MIT"},
        "components": {"schemas": {name: schemas[name] for name in sorted(seen)}},
    }


def render(subset: dict[str, Any]) -> str:
    """The vendored file's text (stable: sorted keys)."""
    return json.dumps(subset, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else REFERENCE
    document = yaml.load(source.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    VENDORED.write_text(render(extract(document)), encoding="utf-8")
    print(f"wrote {VENDORED} ({len(extract(document)['components']['schemas'])} schemas)")


if __name__ == "__main__":
    main()
