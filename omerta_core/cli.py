"""The ``omerta`` command line: node, plugins, id, status, config, and plugins' groups.

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
from omerta_core.errors import ConflictError, OmertaError, PluginLoadError
from omerta_core.node import run_node
from omerta_core.paths import ensure_state_dir
from omerta_core.plugins import PluginHost, installed_plugins
from omerta_core.services import Claims

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class OmertaGroup(click.Group):
    """The root group: kernel commands plus every installed plugin's commands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plugin_commands: dict[str, click.Command] | None = None
        self._conflicts: dict[str, str] = {}
        self._load_errors: list[str] = []

    def _load_plugin_commands(self) -> dict[str, click.Command]:
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
        kernel_command = super().get_command(ctx, cmd_name)
        if kernel_command is None:
            self._warn_load_errors()
        return kernel_command or commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OmertaError as exc:
            raise click.ClickException(str(exc)) from exc


def plugin_commands(host: PluginHost) -> list[tuple[str, click.Command]]:
    """``(plugin, command)`` for every command the host's plugins add."""
    return [(name, command) for name in host.loaded for command in host.call_one(name, "omerta_cli_commands") or []]


def plugin_command_table(host: PluginHost, kernel: list[str]) -> tuple[dict[str, click.Command], dict[str, str]]:
    """The plugins' commands by name, and the names two owners claim (with the conflict's message).

    Two plugins may each add a group of the same name (``omerta vm`` from kvm and rental): the groups
    merge, and each subcommand is claimed as ``"vm request"``, so two plugins adding one subcommand, or a
    command and a group of one name, are conflicts naming both owners.
    """
    claims = Claims("command")
    for command_name in kernel:
        claims.claim(command_name, "kernel")
    commands: dict[str, click.Command] = {}
    conflicts: dict[str, str] = {}
    for name, command in plugin_commands(host):
        key = command.name or name
        earlier = commands.get(key)
        try:
            if isinstance(command, click.Group) and isinstance(earlier, click.Group):
                for sub in command.commands:
                    claims.claim(f"{key} {sub}", name)
                commands[key] = _merged(earlier, command)
                continue
            claims.claim(key, name)
            if isinstance(command, click.Group):
                for sub in command.commands:
                    claims.claim(f"{key} {sub}", name)
        except ConflictError as exc:
            conflicts[key] = str(exc)
            continue
        commands[key] = command
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
        help="Node state directory [default: $XDG_DATA_HOME/omerta].",
    )(func)


def config_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="TOML configuration file [default: $OMERTA_CONFIG or $XDG_CONFIG_HOME/omerta/config.toml].",
    )(func)


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(func)


def resolve_state_dir(state_dir: Path | None) -> Path:
    if state_dir is not None:
        return state_dir
    return config_mod.load().state_dir


def parse_sets(values: tuple[str, ...]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or "." not in key:
            raise click.BadParameter(f"expected SECTION.KEY=VALUE, got {item!r}", param_hint="--set")
        overrides[key.strip()] = config_mod.parse_value(raw)
    return overrides


@click.group(cls=OmertaGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="omerta")
def main() -> None:
    """Omerta: share idle computers as ephemeral VMs over an encrypted P2P mesh."""


@main.command()
@click.option(
    "--plugins",
    "plugin_names",
    help="Comma-separated plugin names to load (e.g. kvm,gossip) [default: $OMERTA_PLUGINS, else all].",
)
@state_dir_option
@config_option
@click.option("--bootstrap", multiple=True, metavar="HOST:PORT", help="Bootstrap peer (repeatable).")
@click.option("--log-json", is_flag=True, default=None, help="Log JSON lines instead of readable text.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default=None)
@click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE", help="Override one setting.")
def node(
    plugin_names: str | None,
    state_dir: Path | None,
    config_file: Path | None,
    bootstrap: tuple[str, ...],
    log_json: bool | None,
    log_level: str | None,
    sets: tuple[str, ...],
) -> None:
    """Run a node with the selected plugins until SIGINT or SIGTERM."""
    overrides = parse_sets(sets)
    flags = {
        "node.plugins": plugin_names,
        "node.state_dir": str(state_dir) if state_dir else None,
        "node.bootstrap": list(bootstrap) or None,
        "node.log_json": log_json,
        "node.log_level": log_level,
    }
    overrides.update({k: v for k, v in flags.items() if v is not None})
    preliminary = config_mod.load(config_file=config_file, overrides=overrides)
    selected = preliminary.node("plugins")
    host = PluginHost.load(selected, defaults=preliminary.table("node.defaults"))
    if selected:
        host.require_usable(selected)
    check_command_conflicts(host)
    config = config_mod.load(config_file=config_file, plugin_defaults=host.config_defaults(), overrides=overrides)
    logs.configure(config.node("log_level"), json_output=bool(config.node("log_json")))
    run_node(config, host)


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
    click.echo(f"peer     {result['peer_id']}")
    click.echo(f"pid      {result['pid']}   uptime {result['uptime_s']:.0f} s")
    click.echo(f"state    {result['state_dir']}")
    click.echo("plugins  " + ", ".join(f"{n} {v}" for n, v in result["plugins"].items()))
    for kind, running in result["services"].items():
        for name, detail in running.items():
            click.echo(f"{kind:<9}{name}  {json.dumps(detail, sort_keys=True)}")
    for plugin, section in result.get("plugin_status", {}).items():
        click.echo(f"{plugin:<9}{json.dumps(section, sort_keys=True)}")


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
    main()
