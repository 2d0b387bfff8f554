"""The local control API: how the CLI drives a running node over a Unix socket."""
