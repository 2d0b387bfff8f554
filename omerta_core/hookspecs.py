"""The map of the system: every extension point a plugin may implement.

Plugins are registered under the entry-point group ``omerta`` (the entry point's
name is the plugin's short name) and implement these hooks by name with
``@omerta_core.hookimpl``. The kernel's own kinds of backend (transport, NAT
traversal, discovery, ledger, hypervisor) take exactly the path a third party's
kind takes: a Protocol class a record ``provides``.

How plugins find each other
    A backend reaches another through the node: ``node.service(Transport)``
    returns the running ``Transport`` (typed: mypy checks every call on it) or
    raises ``MissingServiceError``; ``node.find(Discovery)`` returns a
    ``Discovery`` or ``None`` for kinds a backend only uses when present. The
    Protocol class is the key; a plugin may define its own kind and others may
    need it, with no kernel change.

Needs and provisions
    A :class:`~omerta_core.records.ServiceRecord` says what its backend
    ``provides`` and ``needs`` (``Need(Transport)``; ``Need(Discovery,
    optional=True)`` for "uses when present"). ``omerta node --plugins a,b`` loads
    ``a`` and ``b`` and then, for every need no selected plugin meets, the plugin
    that provides it by default (``[node] defaults = {transport = "udp"}`` in
    config, else the installed backend marked ``default=True``, else the only
    installed provider), logging ``udp loaded: needed by gossip``. A need nothing
    installed meets stops the node with one line naming it. Backends start in
    dependency order and stop in reverse; a cycle is an error naming it.

Conflicts
    Names are claimed once: two backends of one kind with the same name, a
    control method (including the kernel's ``status`` and ``stop``) or CLI
    command added by two plugins, or a transport channel handler registered
    twice, stop the node at start with one line naming both plugins.

This module only declares signatures; it touches nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from omerta_core.node import NodeContext
    from omerta_core.records import ServiceRecord

PROJECT_NAME = "omerta"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: A control-API method: receives the node and the request's ``params``, returns
#: a JSON-serialisable result (or an awaitable of one).
ControlMethod = Callable[["NodeContext", dict[str, Any]], Any]


# -- registration: what backends a plugin offers -------------------------------


@hookspec
def omerta_services() -> list[ServiceRecord]:
    """Return the backends this plugin offers, one record each.

    :returns: records whose ``provides`` is a Protocol class (a built-in kind from
        :mod:`omerta_core.interfaces` or the plugin's own). Each factory is called
        with the :class:`~omerta_core.node.NodeContext` and returns an object that
        satisfies that Protocol and :class:`~omerta_core.interfaces.common.Service`.

    **Called** once per plugin, when the plugin is loaded (by ``omerta node``,
    ``omerta plugins`` and when the kernel looks for a provider of a need), before
    anything starts. Must not do I/O.

    **Combining**: the records of every selected plugin are pooled. Backends
    whose platform or ``unusable_reason`` refuses are skipped with a warning
    (and, if the user named the plugin, refused with that reason). The rest start
    in dependency order: after every running provider of each kind in ``needs``;
    ties keep plugin selection order. They stop in reverse.

    **Conflicts**: two records of one kind with the same ``name`` stop the node
    naming both plugins.
    """


# -- user surface ---------------------------------------------------------------


@hookspec
def omerta_cli_commands() -> list[click.Command]:
    """Return click commands or groups to add to the ``omerta`` command line.

    **Called** by the CLI on every invocation, for every installed plugin (so help
    lists every command), and by ``omerta node`` for the selected plugins.

    **Combining**: each command is added under its own name beside the kernel's.

    **Conflicts**: a name used by the kernel or by another plugin: invoking it
    fails with one line naming both plugins, and a node with both plugins does not
    start.
    """


@hookspec
def omerta_control_methods() -> dict[str, ControlMethod]:
    """Return control-API methods (``"vm.list"`` style names) served by a running node.

    **Called** once at node start, per selected plugin, after every backend has
    started and before ``omerta_node_started``.

    **Combining**: the dicts of all plugins and the kernel's ``status`` and ``stop``
    are merged into one method table.

    **Conflicts**: a method name served twice (including ``status``/``stop``)
    stops the node, naming both plugins.
    """


@hookspec
def omerta_config_defaults() -> dict[str, Any]:
    """Return this plugin's configuration defaults, stored under ``[plugins.<name>]``.

    **Called** while configuration is built, before anything starts, for every
    selected plugin. **Combining**: each plugin's dict lives under its own name, so
    plugins cannot collide; files, environment and flags override it.
    """


# -- node lifecycle -------------------------------------------------------------


@hookspec
def omerta_node_started(node: NodeContext) -> Awaitable[None] | None:
    """Called once every selected backend has started and the control socket serves.

    :param node: the running node; ``node.service(Kind)`` finds backends.

    **Order**: plugins in selection order; an awaitable result is awaited before
    the next plugin's call. An exception stops the node.
    """


@hookspec
def omerta_node_stopping(node: NodeContext) -> Awaitable[None] | None:
    """Called when the node begins to stop, before the control socket and backends stop.

    :param node: the running node. **Order**: selection order; awaitables are
    awaited; an exception is logged and the next plugin is still called. The whole
    shutdown has ``[node] shutdown_timeout_s``.
    """


@hookspec
def omerta_node_status(node: NodeContext) -> dict[str, Any]:
    """Return a JSON-serialisable section for ``omerta status`` (counters, paths, VMs).

    :param node: the running node. **Called** on every ``status`` request, per
    plugin. **Combining**: each plugin's section appears under its name in
    ``plugin_status``; backends' own ``status()`` appear under ``services``.
    """
