"""Omerta's kernel: hook specifications, plugin manager, node runtime and CLI.

The kernel imports nothing from any plugin; plugins reach it through the
``omerta`` entry-point group and the hooks in :mod:`omerta_core.hookspecs`.
"""

from omerta_core.hookspecs import hookimpl, hookspec

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl", "hookspec"]
