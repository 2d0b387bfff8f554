"""Hook implementations of the `{{ cookiecutter.name }}` plugin.

Implement any hook from omerta_core.hookspecs by name; `omerta plugins` lists
the ones you implement. This starter adds a command and a status section. To
offer a backend, implement `omerta_services` and return a `ServiceRecord` that
`provides` a Protocol class (see docs/writing-a-plugin.md); other backends are
reached with `node.service(Transport)` or `node.find(Discovery)`.
"""

from __future__ import annotations

from typing import Any

import click

from omerta_core import hookimpl
from omerta_core.node import NodeContext


@click.command(name="{{ cookiecutter.name }}")
def hello() -> None:
    """Say hello from the {{ cookiecutter.name }} plugin."""
    click.echo("hello from {{ cookiecutter.name }}")


@hookimpl
def omerta_cli_commands() -> list[click.Command]:
    return [hello]


@hookimpl
def omerta_node_started(node: NodeContext) -> None:
    node.log.info("{{ cookiecutter.name }} plugin started")


@hookimpl
def omerta_node_status(node: NodeContext) -> dict[str, Any]:
    return {"hello": "{{ cookiecutter.name }}"}
