"""JSON Schema validation of the loaded document, every error turned into a readable Diagnostic."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from routectl.compiler import model
from routectl.compiler.json_schema import json_schema
from routectl.compiler.loader import Document, PathKey
from routectl.errors import Diagnostic

__all__ = ["validate_schema"]

# What each pattern means, in words a person can act on.
_PATTERN_WORDS = {
    model.NAME_PATTERN: "lowercase letters, digits, '.', '-' and '_', starting with a letter or digit",
    model.MODEL_ID_PATTERN: "a model id of the form 'provider/model-name'",
    model.MEMBER_MODEL_PATTERN: "'provider/model-name' or 'handle/provider/model-name'",
    model.ALIAS_PATTERN: "lowercase letters, digits, '.', '-', '_', '(' and ')', starting with a letter or digit",
    model.DIGEST_PATTERN: "'sha256:' followed by 64 lowercase hex digits (see `routectl hash-key`)",
    model.ENV_PATTERN: "an environment variable name (letters, digits and '_')",
    model.URL_PATTERN: "an http:// or https:// URL",
    model.AFFINITY_PATTERN: "'header:NAME', 'user' or 'metadata.NAME'",
}

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}

_SECRET_KEYS = frozenset({"api_key", "key", "secret", "token", "password"})


def _is_integer(checker: Any, instance: Any) -> bool:
    # JSON Schema counts 60.0 as an integer; YAML people wrote a float there, and the models
    # (strict) reject it, so the schema must say so too or the error would have no good message
    return isinstance(instance, int) and not isinstance(instance, bool)


_StrictIntegers = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)


@cache
def _validator() -> Any:
    schema = json_schema()
    Draft202012Validator.check_schema(schema)
    return _StrictIntegers(schema)


def validate_schema(doc: Document) -> list[Diagnostic]:
    """Every JSON Schema error of the document, as diagnostics."""
    out: list[Diagnostic] = []
    for error in _validator().iter_errors(doc.data):
        out.extend(_diagnostics(doc, error))
    return out


def _diagnostics(doc: Document, error: ValidationError) -> Iterator[Diagnostic]:
    path: PathKey = tuple(error.absolute_path)
    schema: Any = error.schema
    instance: Any = error.instance
    kind = error.validator

    if kind == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(schema.get("properties", {}))
        extras = [k for k in instance if k not in schema.get("properties", {})]
        for key in extras:
            if path and path[-1] == "credentials" and key in _SECRET_KEYS:
                message = (
                    f"'{key}' would put a secret in routing.yaml; set it in an environment "
                    "variable and name that variable with 'api_key_env'"
                )
            elif allowed:
                message = f"unknown key '{key}' (allowed: {', '.join(allowed)})"
            else:
                message = f"unknown key '{key}'"
            yield doc.diagnostic((*path, key), message, key=True)
        return
    if kind == "required":
        missing = [
            k
            for k in schema.get("required", [])
            if isinstance(instance, dict) and k not in instance
        ]
        if "api_key_env" in missing and _SECRET_KEYS & set(instance):
            missing.remove("api_key_env")  # the pasted secret's own message says what to do
        for key in missing:
            yield doc.diagnostic(path, f"missing required key '{key}'", key=True)
        return
    if "propertyNames" in error.relative_schema_path:
        # the error is about a key (a name): point at the key, and explain the rule it broke
        yield doc.diagnostic(
            (*path, instance), f"name {_message(kind, schema, instance)}", key=True
        )
        return
    if path == ("version",) and kind in ("const", "type"):
        yield doc.diagnostic(
            path, f"unsupported format version {_describe(instance)}; this routectl reads version 1"
        )
        return
    if "credentials" in path or path[-1:] == ("base_url",):
        # whatever sits under credentials may be a pasted key, and so may a URL: never echo them
        instance = _Hidden()
    yield doc.diagnostic(path, _message(kind, schema, instance, error))


def _message(kind: Any, schema: Any, instance: Any, error: ValidationError | None = None) -> str:
    got = _describe(instance)
    if kind == "type":
        expected = schema.get("type")
        names = [expected] if isinstance(expected, str) else list(expected)
        want = " or ".join(_TYPE_WORDS.get(n, n) for n in names)
        return f"must be {want}, got {got}"
    if kind == "exclusiveMinimum":
        return f"must be more than {schema['exclusiveMinimum']}, got {got}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if lo is not None and hi is not None:
            return f"must be between {lo} and {hi}, got {got}"
        if lo is not None:
            return f"must be at least {lo}, got {got}"
        return f"must be at most {hi}, got {got}"
    if kind == "pattern":
        words = _PATTERN_WORDS.get(schema["pattern"], f"match {schema['pattern']}")
        return f"must be {words}; got {got}"
    if kind == "maxLength":
        size = f", got {len(instance)}" if isinstance(instance, str) else ""
        return f"must be at most {schema['maxLength']} characters long{size}"
    if kind == "minLength":
        return "must not be empty"
    if kind == "enum":
        options = ", ".join(str(o) for o in schema["enum"])
        return f"must be one of: {options}; got {got}"
    if kind == "const":
        return f"must be {schema['const']}, got {got}"
    if kind == "minItems":
        n = schema["minItems"]
        return f"must list at least {n} item{'s' if n != 1 else ''}"
    if kind == "anyOf" and "items" not in schema:
        choices = [_option_words(s) for s in schema["anyOf"]]
        return f"must be {' or '.join(choices)}; got {got}"
    if error is not None and not isinstance(instance, _Hidden):
        return error.message
    return f"is invalid: {got}"


def _option_words(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " or ".join(f"'{o}'" for o in schema["enum"])
    if schema.get("type") == "integer" and "minimum" in schema and "maximum" in schema:
        return f"an HTTP status {schema['minimum']}-{schema['maximum']}"
    return _TYPE_WORDS.get(str(schema.get("type")), "valid")


class _Hidden:
    """Stands for a value that must not be shown."""

    def __len__(self) -> int:
        return 0


def _describe(value: Any) -> str:
    if isinstance(value, _Hidden):
        return "a value not shown here (it may be a secret)"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return repr(shown)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
