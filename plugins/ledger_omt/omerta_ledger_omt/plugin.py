"""Hook implementations of the ``omt`` plugin, registered through the ``omerta`` entry point.

Gathers the plugin's parts: the ``.omt`` toolchain's command group and, once
built, the ledger backend. Touches nothing itself.
"""
