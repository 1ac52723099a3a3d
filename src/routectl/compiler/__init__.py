"""The compiler: routing.yaml -> validated, frozen RoutingTable -> generated/ files."""

from __future__ import annotations

from routectl.compiler.build import build_table, validate_config

__all__ = ["build_table", "validate_config"]
