"""The exception tree and the Diagnostic every validation problem is reported as.

RoutectlError
├── ConfigError        routing.yaml is invalid (every Diagnostic at once)
├── TableError         a compiled table is missing, malformed or tampered with
├── RoutingError       a request that cannot be routed (runtime/errors.py: code, status, body)
├── ApplyError         a migration could not be applied (compiler/db/apply.py)
├── SourceError        a review tool could not read a config or table (review/sources.py)
└── RouteTestError     a routes.yaml of `routectl test` is malformed (review/routetest.py)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConfigError", "Diagnostic", "RoutectlError", "TableError"]


class RoutectlError(Exception):
    """Base of routectl's own errors."""


@dataclass(frozen=True, slots=True, order=True)
class Diagnostic:
    """One problem in routing.yaml, pointing at a line and column (1-based)."""

    line: int
    col: int
    path: str  # YAML path, e.g. collections.flash2.5.members[1].weight
    message: str
    file: str = "routing.yaml"
    # "error" (the file is invalid) or "warning" (valid, but probably not what was meant)
    severity: str = "error"

    def format(self) -> str:
        """gcc style: FILE:LINE:COL: error: PATH: MESSAGE (`warning:` for a warning)."""
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.col}: {self.severity}: {where}{self.message}"


class ConfigError(RoutectlError):
    """routing.yaml is invalid; carries every diagnostic found, sorted."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics)
        super().__init__("\n".join(d.format() for d in self.diagnostics))


class TableError(RoutectlError):
    """The table file is missing, malformed, or its hash does not match its content."""
