"""The `routectl` command line: thin click commands grouped by area.

Each area registers its commands from its own module under routectl.commands; heavy imports
(the compiler's yaml/jsonschema/jinja2, the runtime's aiohttp) happen inside the commands, so
`routectl serve` never loads the compiler.
"""

from __future__ import annotations

import click

from routectl import __version__
from routectl.commands import register_all


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="routectl")
def main() -> None:
    """Routing as code for LLM gateways: compile routing.yaml, serve it, review changes."""


register_all(main)
