"""PostgreSQL from compiled tables: rows (projection) -> compare -> ops -> render (jinja2)."""

from __future__ import annotations

from routectl.compiler.db.compare import compare
from routectl.compiler.db.render import render_migration, render_seed

__all__ = ["compare", "render_migration", "render_seed"]
