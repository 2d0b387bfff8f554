"""Hook implementations of the `{{ cookiecutter.name }}` plugin.

Implement any hook from omerta_core.hookspecs by name; `omerta plugins` lists
the ones you implement. This starter adds a command and a status section.
"""

from __future__ import annotations

from typing import Any

import click

from omerta_core import hookimpl


@click.command(name="{{ cookiecutter.name }}")
def hello() -> None:
    """Say hello from the {{ cookiecutter.name }} plugin."""
    click.echo("hello from {{ cookiecutter.name }}")


@hookimpl
def omerta_cli_commands() -> list[click.Command]:
    return [hello]


@hookimpl
def omerta_node_started(node: Any) -> None:
    node.log.info("{{ cookiecutter.name }} plugin started")


@hookimpl
def omerta_node_status(node: Any) -> dict[str, Any]:
    return {"hello": "{{ cookiecutter.name }}"}
