"""The `routectl` command line: thin click commands grouped by area.

Each area registers its commands from its own module under routectl.commands; heavy imports
(the compiler's yaml/jsonschema/jinja2, the runtime's aiohttp) happen inside the commands, so
`routectl serve` never loads the compiler.
"""

from __future__ import annotations

import click

from routectl import __version__
from routectl.commands import register_all

# what `pip install 'routectl[cli]'` adds to the runtime's dependencies (pyproject.toml)
_CLI_EXTRA = frozenset(("yaml", "jsonschema", "jinja2", "pydantic", "psycopg"))


class _Group(click.Group):
    """A command that needs the full CLI says how to get it, instead of a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").partition(".")[0]
            if missing not in _CLI_EXTRA:
                raise
            raise click.ClickException(
                f"this command needs the full CLI ({missing} is not installed): "
                "pip install 'routectl[cli]'"
            ) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="routectl")
def main() -> None:
    """Routing as code for LLM gateways: compile routing.yaml, serve it, review changes."""


register_all(main)
