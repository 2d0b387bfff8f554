"""The map of the system: every extension point a plugin may implement.

Plugins are registered under the entry-point group ``omerta`` and implement these
hooks by name with ``@omerta_core.hookimpl``. Registration hooks return typed
records (:mod:`omerta_core.records`) that the kernel turns into running services;
lifecycle hooks let a plugin act when the node starts and stops; the CLI and
control hooks let a plugin add ``omerta`` commands and control-API methods.

This module only declares signatures; it touches nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from omerta_core.node import NodeContext
    from omerta_core.records import (
        DiscoveryRecord,
        HypervisorRecord,
        LedgerRecord,
        NatTraversalRecord,
        TransportRecord,
    )

PROJECT_NAME = "omerta"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: A control-API method: receives the node and the request's ``params``, returns
#: a JSON-serialisable result (or an awaitable of one).
ControlMethod = Callable[["NodeContext", dict[str, Any]], Any]


# -- registration: what backends a plugin offers -------------------------------


@hookspec
def omerta_transports() -> list[TransportRecord]:
    """Return the transports this plugin offers.

    A transport's factory returns an object satisfying
    :class:`omerta_core.interfaces.transport.Transport`: it sends bytes to a peer
    id on a named channel (datagram or reliable) and dispatches received
    messages to registered handlers.
    """


@hookspec
def omerta_nat_traversals() -> list[NatTraversalRecord]:
    """Return the NAT traversal methods this plugin offers.

    The factory returns a :class:`omerta_core.interfaces.nat.NatTraversal`:
    it discovers this node's public endpoints, classifies the local NAT and
    establishes direct paths to peers when the NATs allow it.
    """


@hookspec
def omerta_hypervisors() -> list[HypervisorRecord]:
    """Return the hypervisor backends this plugin offers.

    The factory returns a :class:`omerta_core.interfaces.hypervisor.Hypervisor`:
    it admits, creates, and always deletes ephemeral VMs.
    """


@hookspec
def omerta_discoveries() -> list[DiscoveryRecord]:
    """Return the discovery mechanisms this plugin offers.

    The factory returns a :class:`omerta_core.interfaces.discovery.Discovery`:
    it finds a network's peers, tracks liveness and tells the transport where
    each peer can be reached.
    """


@hookspec
def omerta_ledgers() -> list[LedgerRecord]:
    """Return the ledger engines this plugin offers.

    The factory returns a :class:`omerta_core.interfaces.ledger.Ledger`: it keeps
    this identity's chain, verifies others' and runs transaction protocols.
    """


# -- user surface ---------------------------------------------------------------


@hookspec
def omerta_cli_commands() -> list[click.Command]:
    """Return click commands or groups to add to the ``omerta`` command line."""


@hookspec
def omerta_control_methods() -> dict[str, ControlMethod]:
    """Return control-API methods (``"vm.list"`` style names) served by a running node."""


@hookspec
def omerta_config_defaults() -> dict[str, Any]:
    """Return this plugin's configuration defaults, stored under ``[plugins.<name>]``."""


# -- node lifecycle -------------------------------------------------------------


@hookspec
def omerta_node_started(node: NodeContext) -> Awaitable[None] | None:
    """Called once every selected backend has started; may return an awaitable."""


@hookspec
def omerta_node_stopping(node: NodeContext) -> Awaitable[None] | None:
    """Called when the node begins to stop, before its backends stop; may return an awaitable."""


@hookspec
def omerta_node_status(node: NodeContext) -> dict[str, Any]:
    """Return a JSON-serialisable section for ``omerta status`` (counters, paths, VMs)."""
