"""The published JSON Schema (draft 2020-12) of routing.yaml, generated from the authoring models."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from routectl.compiler.model import RoutingConfig

__all__ = ["SCHEMA_ID", "json_schema", "json_schema_text"]

SCHEMA_ID = "https://routectl.dev/schema/routing.schema.json"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


@cache
def json_schema() -> dict[str, Any]:
    """The JSON Schema of routing.yaml as a dict (cached; do not mutate)."""
    raw = RoutingConfig.model_json_schema(mode="validation")
    body = _tidy(raw)
    body.pop("title", None)
    return {
        "$schema": _DIALECT,
        "$id": SCHEMA_ID,
        "title": "routectl routing.yaml (format version 1)",
        **body,
    }


def json_schema_text() -> str:
    """The schema as the exact text of schema/routing.schema.json."""
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _tidy(schema: Any) -> Any:
    """Make pydantic's output say what the file format means.

    - optional keys are written as `anyOf: [X, null]` with `default: null`; in the file the key is
      either absent or an X, so an explicit null is an error there: keep X only.
    - dict keys with a pattern come out as patternProperties, which lets keys that do not match
      through unchecked; propertyNames + additionalProperties rejects them.
    - auto-generated titles ("Display Name") repeat the key name; drop them.
    """
    if isinstance(schema, list):
        return [_tidy(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "$defs", "patternProperties"):
            out[key] = {name: _tidy(sub) for name, sub in value.items()}
        elif key in ("default", "const", "enum", "examples"):
            out[key] = value  # data, not schema
        elif key == "title" and isinstance(value, str):
            continue
        else:
            out[key] = _tidy(value)
    any_of = out.get("anyOf")
    has_null_default = "default" in out and out["default"] is None
    if (
        isinstance(any_of, list)
        and len(any_of) == 2
        and {"type": "null"} in any_of
        and has_null_default
    ):
        (kept,) = [s for s in any_of if s != {"type": "null"}]
        del out["anyOf"], out["default"]
        out = {**kept, **out}
    pattern_props = out.get("patternProperties")
    if isinstance(pattern_props, dict) and len(pattern_props) == 1:
        ((pattern, value_schema),) = pattern_props.items()
        names = dict(out.get("propertyNames", {}))
        names["pattern"] = pattern
        del out["patternProperties"]
        out["propertyNames"] = names
        out["additionalProperties"] = value_schema
    return out
