"""What the CLI shows while a slow command runs: a spinner on a terminal, plain lines elsewhere.

Progress goes to standard error so standard output stays the command's
result (a VM id, JSON). On a terminal, rich draws one status line that each
note replaces; in a pipe or a log each note is one line of its own.
Touches only standard error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click


@contextmanager
def progress(title: str) -> Iterator[Callable[[str], None]]:
    """Show ``title`` while the block runs; the yielded function shows a note on what happens now."""
    if not sys.stderr.isatty():
        yield lambda note: click.echo(f"{title}: {note}", err=True)
        return
    from rich.console import Console  # noqa: PLC0415 - only a terminal needs it; nodes import this module too

    console = Console(stderr=True)
    with console.status(title) as status:
        yield lambda note: status.update(f"{title}: {note}")
