"""The compiler's front door: source text -> diagnostics, or a validated, lowered RoutingTable."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pydantic

from routectl.compiler.loader import Document, load_document
from routectl.compiler.lower import lower
from routectl.compiler.model import RoutingConfig
from routectl.compiler.validate import check_meaning
from routectl.compiler.validate.advice import advise
from routectl.errors import ConfigError, Diagnostic
from routectl.gcpause import gc_paused
from routectl.table import RoutingTable, dump_table

__all__ = ["analyze", "build_table", "read_source", "validate_config"]


def read_source(source: str | Path, text: str | None, filename: str | None) -> tuple[str, str]:
    """(text, filename shown in diagnostics) of a config given as a path or as text."""
    name = (
        filename if filename is not None else ("routing.yaml" if text is not None else str(source))
    )
    if text is None:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                [Diagnostic(1, 1, "", f"cannot read {source}: {exc.strerror or exc}", name)]
            ) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                [Diagnostic(1, 1, "", f"{source} is not UTF-8 text: {exc.reason}", name)]
            ) from exc
    return text, name


def analyze(
    text: str, filename: str = "routing.yaml"
) -> tuple[RoutingConfig | None, list[Diagnostic]]:
    """Load and validate; the authoring config when valid, and every diagnostic, sorted."""
    config, diagnostics, _ = _analyze(text, filename)
    return config, diagnostics


def _analyze(text: str, filename: str) -> tuple[RoutingConfig | None, list[Diagnostic], Document]:
    doc = load_document(text, filename)
    diagnostics = list(doc.diagnostics)
    if doc.data is None and diagnostics:
        return None, sorted(diagnostics), doc
    # The models accept no more than the schema generated from them (a test holds them to it)
    # and validate in compiled code, so a valid file never pays for jsonschema's walk; when they
    # reject, jsonschema explains every error.
    config: RoutingConfig | None
    try:
        config = RoutingConfig.model_validate(doc.data)
    except pydantic.ValidationError as exc:
        # jsonschema costs a tenth of a second to import: only a rejected file pays for it
        from routectl.compiler.schema import validate_schema

        config = None
        diagnostics += validate_schema(doc) or _pydantic_diagnostics(doc, exc)
    diagnostics += check_meaning(doc)
    if diagnostics:
        return None, sorted(set(diagnostics)), doc
    return config, [], doc


def _pydantic_diagnostics(doc: Document, exc: pydantic.ValidationError) -> list[Diagnostic]:
    return sorted(doc.diagnostic(tuple(e["loc"]), e["msg"]) for e in exc.errors())


def validate_config(
    source: str | Path = "routing.yaml", *, text: str | None = None, filename: str | None = None
) -> list[Diagnostic]:
    """Every problem of a config file (or of `text`), sorted by line; empty when it is valid."""
    try:
        body, name = read_source(source, text, filename)
    except ConfigError as exc:
        return exc.diagnostics
    return analyze(body, name)[1]


def build_table(
    source: str | Path = "routing.yaml",
    *,
    text: str | None = None,
    filename: str | None = None,
    warnings: list[Diagnostic] | None = None,
) -> RoutingTable:
    """Load, validate and lower a config into a RoutingTable with its sha256; ConfigError if
    invalid. A valid config's warnings (validate/advice.py) go to `warnings` when given."""
    body, name = read_source(source, text, filename)
    with gc_paused():
        config, diagnostics, doc = _analyze(body, name)
        if config is None:
            raise ConfigError(diagnostics)
        if warnings is not None:
            warnings += advise(doc)
        table = lower(config)
        return dataclasses.replace(table, sha256=dump_table(table)[1])
