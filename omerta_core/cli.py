"""The ``omerta`` command line: node, plugins, id, status, transport, config, and plugins' groups.

Plugins add command groups through the ``omerta_cli_commands`` hook. Errors
raised as :class:`~omerta_core.errors.OmertaError` become one-line messages.
Touches the state directory (identity) and the control socket.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import structlog

from omerta_core import __version__, logs
from omerta_core import config as config_mod
from omerta_core import identity as identity_mod
from omerta_core.control import client
from omerta_core.errors import ConflictError, ControlError, OmertaError, PluginLoadError, UnknownMethodError
from omerta_core.node import run_node
from omerta_core.paths import ensure_state_dir
from omerta_core.plugins import PluginHost, installed_plugins
from omerta_core.services import Claims
from omerta_core.status_text import status_lines

#: ``ctx.meta`` key naming the plugin whose command runs, for "plugin not loaded" messages.
PLUGIN_META = "omerta.plugin"

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class OmertaGroup(click.Group):
    """The root group: kernel commands plus every installed plugin's commands.

    Every failure ends as one line on standard error and a non-zero exit:
    usage mistakes (exit 2) with a pointer to ``--help``, errors raised as
    :class:`OmertaError` (exit 1), Ctrl-C (exit 130), and, should a bug slip
    through, an unexpected exception without its Python name
    (``OMERTA_TRACEBACK=1`` shows the traceback).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plugin_commands: dict[str, tuple[str | None, click.Command]] | None = None
        self._conflicts: dict[str, str] = {}
        self._load_errors: list[str] = []

    def _load_plugin_commands(self) -> dict[str, tuple[str | None, click.Command]]:
        if self._plugin_commands is None:
            self._plugin_commands = {}
            host = PluginHost()
            for plugin in installed_plugins().values():
                try:
                    host.register(plugin)
                except PluginLoadError as exc:
                    self._load_errors.append(str(exc))
            self._plugin_commands, self._conflicts = plugin_command_table(host, list(self.commands))
        return self._plugin_commands

    def _warn_load_errors(self) -> None:
        """Say which plugins' commands are missing; kernel commands that load plugins say it themselves."""
        for message in self._load_errors:
            click.echo(f"omerta: warning: {message}", err=True)
        self._load_errors.clear()

    def list_commands(self, ctx: click.Context) -> list[str]:
        commands = set(super().list_commands(ctx)) | set(self._load_plugin_commands())
        self._warn_load_errors()
        return sorted(commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        commands = self._load_plugin_commands()
        if cmd_name in self._conflicts:
            raise click.ClickException(f"{self._conflicts[cmd_name]}; uninstall one of them")
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        self._warn_load_errors()
        found = commands.get(cmd_name)
        if found is None:
            return None
        ctx.meta[PLUGIN_META] = found[0]
        return found[1]

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UnknownMethodError as exc:
            raise click.ClickException(not_loaded_message(exc, ctx.meta.get(PLUGIN_META))) from exc
        except OmertaError as exc:
            raise click.ClickException(str(exc)) from exc

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _fail(f"{exc.format_message().rstrip('.')}{where}", exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            _fail("interrupted", 130)
        except Exception as exc:
            if os.environ.get("OMERTA_TRACEBACK"):
                raise
            _fail(f"unexpected failure ({exc}); this is a bug: rerun with OMERTA_TRACEBACK=1 and report it", 1)
        sys.exit(result if isinstance(result, int) else 0)


class CommandInterrupted(click.ClickException):
    """Ctrl-C during a command that says what became of its work (exit 130, as a shell reports SIGINT)."""

    exit_code = 130


def _fail(message: str, code: int) -> None:
    click.echo(f"Error: {' '.join(message.split())}", err=True)
    sys.exit(code)


def not_loaded_message(exc: UnknownMethodError, plugin: str | None) -> str:
    """Say which plugins the node runs, and how to restart it with the one a command needs."""
    try:
        running = list(client.call(exc.state_dir, "status")["plugins"])
    except ControlError:
        running = []
    wanted = plugin or method_owner(exc.method) or exc.method.split(".")[0]
    listed = ", ".join(running) or "none"
    restart = ",".join([*running, wanted])
    return (
        f"the node on {exc.state_dir} does not run plugin {wanted!r} (it runs {listed}); "
        f"stop it and start it again with `omerta node --plugins {restart}`"
    )


def method_owner(method: str) -> str | None:
    """The installed plugin that serves control method ``method`` (``None``: none does)."""
    host = PluginHost()
    for plugin in installed_plugins().values():
        try:
            host.register(plugin)
        except PluginLoadError:
            continue
        if method in (host.call_one(plugin.name, "omerta_control_methods") or {}):
            return plugin.name
    return None


def root_state_dir() -> Path | None:
    """The global ``omerta --state-dir`` given before the command, if any."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return None
    value = ctx.find_root().params.get("state_dir")
    return Path(value) if value else None


def plugin_commands(host: PluginHost) -> list[tuple[str, click.Command]]:
    """``(plugin, command)`` for every command the host's plugins add."""
    return [(name, command) for name in host.loaded for command in host.call_one(name, "omerta_cli_commands") or []]


def plugin_command_table(
    host: PluginHost, kernel: list[str]
) -> tuple[dict[str, tuple[str | None, click.Command]], dict[str, str]]:
    """The plugins' commands by name with the plugin adding each, and the names two owners claim (with the
    conflict's message). A group merged from several plugins has no single owner (``None``).

    Two plugins may each add a group of the same name (``omerta vm`` from kvm and rental): the groups
    merge, and each subcommand is claimed as ``"vm request"``, so two plugins adding one subcommand, or a
    command and a group of one name, are conflicts naming both owners.
    """
    claims = Claims("command")
    for command_name in kernel:
        claims.claim(command_name, "kernel")
    commands: dict[str, tuple[str | None, click.Command]] = {}
    conflicts: dict[str, str] = {}
    for name, command in plugin_commands(host):
        key = command.name or name
        earlier = commands.get(key, (None, None))[1]
        try:
            if isinstance(command, click.Group) and isinstance(earlier, click.Group):
                for sub in command.commands:
                    claims.claim(f"{key} {sub}", name)
                commands[key] = (None, _merged(earlier, command))
                continue
            claims.claim(key, name)
            if isinstance(command, click.Group):
                for sub in command.commands:
                    claims.claim(f"{key} {sub}", name)
        except ConflictError as exc:
            conflicts[key] = str(exc)
            continue
        commands[key] = (name, command)
    return commands, conflicts


def check_command_conflicts(host: PluginHost) -> None:
    """Raise :class:`ConflictError` when two of the host's plugins (or a plugin and the kernel) add one command."""
    _, conflicts = plugin_command_table(host, list(main.commands))
    if conflicts:
        raise ConflictError(next(iter(conflicts.values())))


def _merged(earlier: click.Group, later: click.Group) -> click.Group:
    """Two plugins' groups of one name as one group holding both plugins' subcommands."""
    text = "\n\n".join(h for h in (earlier.help, later.help) if h)
    merged = click.Group(name=earlier.name, help=text, context_settings=CONTEXT_SETTINGS)
    for command in [*earlier.commands.values(), *later.commands.values()]:
        merged.add_command(command)
    return merged


def state_dir_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="OMERTA_STATE_DIR",
        show_envvar=True,
        help="Node state directory [default: the global --state-dir, else $XDG_DATA_HOME/omerta].",
    )(func)


def config_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="TOML configuration file [default: $OMERTA_CONFIG or $XDG_CONFIG_HOME/omerta/config.toml].",
    )(func)


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of text.")(func)


def resolve_state_dir(state_dir: Path | None) -> Path:
    """The command's ``--state-dir``, else the global one, else the configured one."""
    if state_dir is not None:
        return state_dir
    return root_state_dir() or config_mod.load().state_dir


def parse_sets(values: tuple[str, ...]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or "." not in key:
            raise click.BadParameter(f"expected SECTION.KEY=VALUE, got {item!r}", param_hint="'--set'")
        overrides[key.strip()] = config_mod.parse_value(raw)
    return overrides


@click.group(cls=OmertaGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="omerta")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="OMERTA_STATE_DIR",
    show_envvar=True,
    help="Node state directory for every command [default: $XDG_DATA_HOME/omerta].",
)
def main(state_dir: Path | None) -> None:
    """Omerta: share idle computers as ephemeral VMs over an encrypted P2P mesh.

    \b
    Start here:
      omerta node                      run a node (Ctrl-C stops it)
      omerta network create NAME       make a network; `network invite NAME` to share it
      omerta peers                     who the node knows
      omerta ping PEER                 is a peer reachable, and how
    """


@main.command()
@click.option(
    "--plugins",
    "plugin_names",
    help="Comma-separated plugin names to load (e.g. kvm,gossip) [default: $OMERTA_PLUGINS, else all].",
)
@state_dir_option
@config_option
@click.option("--bootstrap", multiple=True, metavar="[PEERID@]HOST:PORT", help="Peer to start from (repeatable).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port the transport listens on (0: any free one) [default: plugins.udp.port, 7700].",
)
@click.option("--log-json", is_flag=True, default=None, help="Log JSON lines instead of readable text.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default=None)
@click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE", help="Override one setting.")
def node(
    plugin_names: str | None,
    state_dir: Path | None,
    config_file: Path | None,
    bootstrap: tuple[str, ...],
    port: int | None,
    log_json: bool | None,
    log_level: str | None,
    sets: tuple[str, ...],
) -> None:
    """Run a node with the selected plugins until SIGINT or SIGTERM.

    Settings come from defaults, the config file, OMERTA_* variables and these
    flags; `omerta config show` lists them. A mistyped setting is an error.
    """
    overrides = parse_sets(sets)
    chosen_dir = state_dir or root_state_dir()
    flags = {
        "node.plugins": plugin_names,
        "node.state_dir": str(chosen_dir) if chosen_dir else None,
        "node.bootstrap": list(bootstrap) or None,
        "node.port": port,
        "node.log_json": log_json,
        "node.log_level": log_level,
    }
    overrides.update({k: v for k, v in flags.items() if v is not None})
    preliminary = config_mod.load(config_file=config_file, overrides=overrides)
    for entry in preliminary.node("bootstrap"):
        config_mod.check_bootstrap_entry(entry)
    selected = preliminary.node("plugins")
    host = PluginHost.load(selected, defaults=preliminary.table("node.defaults"))
    explicit = bool(selected)
    if explicit:
        host.require_usable(selected)
    check_command_conflicts(host)
    config = config_mod.load(config_file=config_file, plugin_defaults=host.config_defaults(), overrides=overrides)
    config_mod.check(config, installed_plugins())
    logs.configure(config.node("log_level"), json_output=bool(config.node("log_json")))
    if not explicit:
        drop_unusable(host)
    run_node(config, host)


def drop_unusable(host: PluginHost) -> None:
    """Leave out installed plugins that cannot run here, so the node neither starts nor lists them.

    A plugin for another platform (macOS's on Linux) is expected and only
    logged at debug level; any other reason is a warning.
    """
    log = structlog.get_logger("omerta.node")
    for name in list(host.loaded):
        reason = host.why_unusable(name)
        if reason is None:
            continue
        elsewhere = host.for_other_platform(name)
        host.drop(name)
        if elsewhere:
            log.debug("plugin not for this platform; not loaded", plugin=name, reason=reason)
        else:
            log.warning("plugin cannot run here; not loaded", plugin=name, reason=reason)


@main.command()
@click.option("--plugins", "plugin_names", help="Only these plugins (comma-separated).")
@json_option
def plugins(plugin_names: str | None, as_json: bool) -> None:
    """List installed plugins: version, what each provides and needs, usable here or why not."""
    names = config_mod.split_names(plugin_names) if plugin_names else None
    host = PluginHost.load(names, complete=False)
    reports = [host.report(name) for name in host.loaded]
    if as_json:
        click.echo(json.dumps([r.as_json() for r in reports], indent=2))
        return
    if not reports:
        click.echo("no plugins installed (try `pip install ./plugins/*/`)")
        return
    rows = [
        (
            r.name,
            r.distribution,
            r.version,
            ", ".join(r.provides) or "-",
            ", ".join([*r.needs, *(f"{u} (optional)" for u in r.uses)]) or "-",
            "yes" if r.usable else f"no: {r.reason}",
        )
        for r in reports
    ]
    print_table(("NAME", "DISTRIBUTION", "VERSION", "PROVIDES", "NEEDS", "USABLE"), rows)


@main.command(name="id")
@state_dir_option
@json_option
def show_id(state_dir: Path | None, as_json: bool) -> None:
    """Show this node's peer id (creating its identity key on first use)."""
    directory = ensure_state_dir(resolve_state_dir(state_dir))
    ident = identity_mod.load_or_create(directory)
    if as_json:
        click.echo(json.dumps({"peer_id": ident.peer_id, "public_key": ident.public_key.hex()}))
    else:
        click.echo(ident.peer_id)


@main.command()
@state_dir_option
@json_option
def status(state_dir: Path | None, as_json: bool) -> None:
    """Ask the running node for its status over the control socket."""
    result = client.call(resolve_state_dir(state_dir), "status")
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for line in status_lines(result):
        click.echo(line)


@main.group(name="transport")
def transport_group() -> None:
    """The running node's transport."""


@transport_group.command(name="restart")
@click.option("--new-port", is_flag=True, help="Listen on a new port even if the old one is free (as after sleep).")
@click.option("--name", default=None, help="Which transport, when the node runs several (default: the default one).")
@state_dir_option
@json_option
def transport_restart(new_port: bool, name: str | None, state_dir: Path | None, as_json: bool) -> None:
    """Close the transport's sockets and open them again, keeping every session.

    What a laptop's network stack does to a node when it sleeps: peers see a pause, not a lost
    session. The same port is taken again unless --new-port is given or another program holds it
    now; every session is then resumed from the new socket (through a relay where a NAT no longer
    lets direct packets in), and relays and discovery learn where the node listens.
    """
    params: dict[str, Any] = {"new_port": new_port, **({"name": name} if name else {})}
    result = client.call(resolve_state_dir(state_dir), "transport.restart", params)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    where = ", ".join(result["after"]) or "nowhere"
    moved = "on a new port" if result["moved"] else "on the same port"
    click.echo(f"transport restarted {moved}: listening on {where}; resuming {result['resumed']} sessions")


@main.group(name="config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command(name="show")
@config_option
@click.option("--plugins", "plugin_names", help="Include defaults of only these plugins.")
@json_option
def config_show(config_file: Path | None, plugin_names: str | None, as_json: bool) -> None:
    """Print every setting with the layer that set it (default, plugin, file, env, flag)."""
    names = config_mod.split_names(plugin_names) if plugin_names else None
    host = PluginHost.load(names)
    config = config_mod.load(config_file=config_file, plugin_defaults=host.config_defaults())
    config_mod.check(config, installed_plugins())
    if as_json:
        click.echo(
            json.dumps(
                {k: {"value": s.value, "source": s.source} for k, s in sorted(config.settings.items())},
                indent=2,
            )
        )
        return
    print_table(
        ("KEY", "VALUE", "SOURCE"),
        [(k, json.dumps(s.value), s.source) for k, s in sorted(config.settings.items())],
    )


def print_table(header: tuple[str, ...], rows: Sequence[tuple[object, ...]]) -> None:
    """Print rows as left-aligned columns under ``header``, two spaces apart (the CLI's table style)."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def run() -> None:
    """Console-script entry point."""
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main(prog_name="omerta")
