"""Hook implementations of the `omt` plugin, registered through the `omerta` entry point.

Nothing is implemented yet: a later issue fills this plugin. Touches nothing.
"""
