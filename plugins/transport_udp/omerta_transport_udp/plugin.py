"""Hook implementations of the `udp` plugin, registered through the `omerta` entry point.

Nothing is implemented yet: a later issue fills this plugin. Touches nothing.
"""
