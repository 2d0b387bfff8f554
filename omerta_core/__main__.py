"""``python -m omerta_core``: the same as the ``omerta`` command."""

from omerta_core.cli import run

run()
