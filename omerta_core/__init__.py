"""Omerta's kernel: hook specifications, plugin manager, node runtime and CLI.

The kernel imports nothing from any plugin; plugins reach it through the
``omerta`` entry-point group and the hooks in :mod:`omerta_core.hookspecs`.
"""

from omerta_core.hookspecs import hookimpl, hookspec

__version__ = "1.0.0"

#: The plugin API this kernel offers: the major version of ``omerta-node``. A plugin fits it when its
#: distribution depends on ``omerta-node>=1,<2`` (see :mod:`omerta_core.plugin_api`).
PLUGIN_API_VERSION = 1

__all__ = ["PLUGIN_API_VERSION", "__version__", "hookimpl", "hookspec"]
