"""Registration of every CLI command; one module per area."""

from __future__ import annotations

import importlib

import click

# Each module defines `register(group: click.Group) -> None`.
_AREAS = ("compile", "serve", "db", "logs", "review")


def register_all(group: click.Group) -> None:
    """Attach each area's commands to the top-level group."""
    for area in _AREAS:
        module = importlib.import_module(f"routectl.commands.{area}")
        module.register(group)
