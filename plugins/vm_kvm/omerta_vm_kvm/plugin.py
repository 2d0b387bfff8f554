"""Hook implementations of the `kvm` plugin, registered through the `omerta` entry point.

Nothing is implemented yet: a later issue fills this plugin. Touches nothing.
"""
