"""MkDocs hook: renders ``omerta --help`` and every command's help into docs/cli.md at build time.

The page holds the marker ``<!-- omerta-cli-help -->``; this hook replaces it with the help text of
``omerta``, of each command and group, and of each group's subcommands, exactly as the command prints
it, including the commands of every plugin installed where the site is built. Touches nothing.
"""

from __future__ import annotations

from typing import Any

import click
from click.testing import CliRunner

from omerta_core.cli import main

MARKER = "<!-- omerta-cli-help -->"
#: The width the CLI formats its help for (its ``max_content_width``).
WIDTH = 100


def help_text(path: list[str]) -> str:
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="omerta", terminal_width=WIDTH)
    if result.exit_code != 0:
        raise RuntimeError(f"omerta {' '.join(path)} --help failed: {result.output}")
    return result.output.rstrip()


def sections(command: click.Command, path: list[str], level: int) -> list[str]:
    title = " ".join(["omerta", *path])
    out = [f"{'#' * level} `{title}`", "", "```text", help_text(path), "```", ""]
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=title)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                out += sections(sub, [*path, name], min(level + 1, 4))
    return out


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, "\n".join(sections(main, [], 2)))
