"""The published JSON Schema: generated from the models, identical to the file, and in agreement."""

from __future__ import annotations

import json
from pathlib import Path

import pydantic
import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from routectl.cli import main
from routectl.compiler.json_schema import json_schema, json_schema_text
from routectl.compiler.loader import load_document
from routectl.compiler.model import RoutingConfig
from routectl.compiler.schema import validate_schema

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
ALL_CONFIGS = [REPO / "routing.yaml", *sorted(FIXTURES.glob("*/*.yaml"))]


def test_schema_file_equals_what_the_models_generate() -> None:
    on_disk = (REPO / "schema" / "routing.schema.json").read_text(encoding="utf-8")
    assert on_disk == json_schema_text(), "run: routectl schema > schema/routing.schema.json"


def test_schema_is_valid_draft_2020_12() -> None:
    schema = json_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["version"] == {"const": 1, "type": "integer"}
    assert schema["additionalProperties"] is False


def test_schema_command_prints_the_file() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    assert result.output == (REPO / "schema" / "routing.schema.json").read_text(encoding="utf-8")
    json.loads(result.output)


def test_schema_carries_the_constraints() -> None:
    defs = json_schema()["$defs"]
    weight = defs["Member"]["properties"]["weight"]
    assert (weight["minimum"], weight["maximum"]) == (0.001, 1.0)
    priority = defs["Connection"]["properties"]["priority"]
    assert (priority["minimum"], priority["maximum"]) == (0, 100)
    assert "fallback" in defs["Collection"]["properties"]["strategy"]["enum"]
    assert defs["Provider"]["properties"]["api"]["enum"] == ["openai", "anthropic", "echo"]
    assert defs["User"]["properties"]["api_keys"]["items"]["pattern"] == r"^sha256:[0-9a-f]{64}$"
    users = json_schema()["properties"]["users"]
    assert users["propertyNames"]["maxLength"] == 100
    assert defs["Credentials"]["additionalProperties"] is False


def test_repo_routing_yaml_points_editors_at_the_schema() -> None:
    first = (REPO / "routing.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=schema/routing.schema.json"


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_models_accept_no_more_than_the_schema(path: Path) -> None:
    # compile skips jsonschema when the models accept a file, so the models must never be
    # more lenient than the published schema
    doc = load_document(path.read_text(encoding="utf-8"))
    if doc.diagnostics:
        return
    # routectl's schema check: the published schema, with integers that are ints (JSON Schema
    # alone counts 60.0 as an integer; the models, strict, do not)
    schema_ok = not validate_schema(doc)
    try:
        RoutingConfig.model_validate(doc.data)
        models_ok = True
    except pydantic.ValidationError:
        models_ok = False
    assert models_ok == schema_ok


@pytest.mark.parametrize(
    "patch",
    [
        {"version": True},
        {"users": {"bob": {"display_name": None}}},
        {"providers": {"p": {"api": "echo", "base_url": None}}},
        {
            "collections": {
                "c": {
                    "scope": "system",
                    "strategy": "random",
                    "members": [{"model": "p/m", "weight": True}],
                }
            }
        },
        {
            "connections": [
                {
                    "id": "c",
                    "owner": "platform",
                    "provider": "p",
                    "models": ["p/m"],
                    "priority": None,
                }
            ]
        },
        {"collections": {"c": {"scope": "system", "strategy": "random", "members": []}}},
        {"users": {"Bob": {}}},
    ],
)
def test_models_reject_what_the_schema_rejects(patch: dict[str, object]) -> None:
    data = {"version": 1, **patch}
    assert list(Draft202012Validator(json_schema()).iter_errors(data))
    with pytest.raises(pydantic.ValidationError):
        RoutingConfig.model_validate(data)
