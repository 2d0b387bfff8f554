"""The `gossip` plugin's commands: ``omerta network create|list|invite|join|leave`` and ``omerta peers``.

Joining, leaving and creating act on ``networks.json`` in the state directory
and then ask a running node (if any) to reload; listing peers asks the running
node. Touches the state directory and the control socket.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from omerta_core import identity as identity_mod
from omerta_core.cli import json_option, print_table, resolve_state_dir, state_dir_option
from omerta_core.control import client
from omerta_core.errors import ControlError
from omerta_core.paths import ensure_plugin_dir, ensure_state_dir
from omerta_discovery_gossip.errors import GossipError
from omerta_discovery_gossip.invite import create_invite, parse_bootstrap, parse_invite
from omerta_discovery_gossip.network import Network
from omerta_discovery_gossip.network_store import NetworkStore

DEFAULT_INVITE_TTL_S = 24 * 3600


def _plugin_dir(state_dir: Path | None, *, create: bool = True) -> Path:
    """The plugin's directory; read-only commands pass ``create=False`` and make nothing."""
    directory = resolve_state_dir(state_dir)
    return ensure_plugin_dir(directory, "gossip") if create else directory / "plugins" / "gossip"


def _live(state_dir: Path | None, method: str, params: dict[str, Any] | None = None) -> Any | None:
    """Ask the running node, or return ``None`` when no node runs on this state directory."""
    try:
        return client.call(resolve_state_dir(state_dir), method, params)
    except ControlError as exc:
        if "no node" in str(exc):
            return None
        raise


@click.group(name="network")
def network_group() -> None:
    """Create, list, invite to, join and leave networks."""


@network_group.command(name="create")
@click.argument("name")
@state_dir_option
@json_option
def create(name: str, state_dir: Path | None, as_json: bool) -> None:
    """Create a network called NAME (a fresh key) and join it."""
    joined = NetworkStore(_plugin_dir(state_dir)).add(Network.create(name))
    _live(state_dir, "gossip.reload")
    click.echo(json.dumps(joined.as_json()) if as_json else f"created network {name} ({joined.network.id_hex})")


@network_group.command(name="list")
@state_dir_option
@json_option
def list_networks(state_dir: Path | None, as_json: bool) -> None:
    """List joined networks (with live member counts when a node runs)."""
    joined = NetworkStore(_plugin_dir(state_dir, create=False)).load()
    live = {n["id"]: n for n in _live(state_dir, "gossip.networks") or []}
    rows = [
        {
            **m.as_json(),
            "members": live.get(m.network.id_hex, {}).get("members"),
            "alive": live.get(m.network.id_hex, {}).get("alive"),
        }
        for m in joined
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no networks joined (the node uses the public network); try `omerta network create NAME`")
        return
    print_table(
        ("NAME", "ID", "ALIVE", "MEMBERS"),
        [
            (
                r["name"],
                r["id"],
                "-" if r["alive"] is None else str(r["alive"]),
                "-" if r["members"] is None else str(r["members"]),
            )
            for r in rows
        ],
    )


@network_group.command(name="invite")
@click.argument("network")
@click.option(
    "--ttl",
    "ttl_s",
    type=float,
    default=DEFAULT_INVITE_TTL_S,
    show_default=True,
    help="Seconds the invite stays valid.",
)
@click.option(
    "--bootstrap",
    multiple=True,
    metavar="[PEERID@]HOST:PORT",
    help="Bootstrap entry to put in the invite (repeatable) [default: the running node's endpoints].",
)
@state_dir_option
@json_option
def invite(network: str, ttl_s: float, bootstrap: tuple[str, ...], state_dir: Path | None, as_json: bool) -> None:
    """Print a signed invite link to NETWORK (name or id prefix)."""
    if ttl_s <= 0:
        raise click.BadParameter(f"must be more than 0 seconds, got {ttl_s:g}", param_hint="'--ttl'")
    for entry in bootstrap:
        parse_bootstrap(entry)
    directory = ensure_state_dir(resolve_state_dir(state_dir))
    joined = NetworkStore(_plugin_dir(state_dir, create=False)).find(network)
    entries = list(bootstrap) or _live(state_dir, "gossip.endpoints") or []
    if not entries:
        entries = _live(state_dir, "gossip.endpoints", {"loopback_fallback": True}) or []
        if entries:
            click.echo(
                "warning: no peer has told this node its address yet, so the invite names loopback "
                "and works on this machine only; for others pass --bootstrap HOST:PORT",
                err=True,
            )
    if not entries:
        raise GossipError("no bootstrap endpoints: start the node first, or pass --bootstrap HOST:PORT")
    made = create_invite(identity_mod.load_or_create(directory), joined.network, entries, ttl_s)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "link": made.link(),
                    "network": joined.network.name,
                    "id": joined.network.id_hex,
                    "bootstrap": entries,
                    "expires_at": made.expires_at,
                }
            )
        )
    else:
        click.echo(made.link())


@network_group.command(name="join")
@click.argument("link")
@state_dir_option
@json_option
def join(link: str, state_dir: Path | None, as_json: bool) -> None:
    """Join the network of an invite LINK (omerta://join/...)."""
    received = parse_invite(link)
    for entry in received.bootstrap:
        parse_bootstrap(entry)
    joined = NetworkStore(_plugin_dir(state_dir)).add(received.network, received.bootstrap)
    _live(state_dir, "gossip.reload")
    name = received.network.name
    click.echo(json.dumps(joined.as_json()) if as_json else f"joined network {name} ({joined.network.id_hex})")


@network_group.command(name="leave")
@click.argument("network")
@state_dir_option
@json_option
def leave(network: str, state_dir: Path | None, as_json: bool) -> None:
    """Leave NETWORK (name or id prefix): forget its key and its cached peers."""
    gone = NetworkStore(_plugin_dir(state_dir, create=False)).remove(network)
    _live(state_dir, "gossip.reload")
    if as_json:
        click.echo(json.dumps({"left": True, "name": gone.network.name, "id": gone.network.id_hex}))
    else:
        click.echo(f"left network {gone.network.name} ({gone.network.id_hex})")


@click.command(name="peers")
@click.option("--network", help="Only this network (name or id).")
@state_dir_option
@json_option
def peers(network: str | None, state_dir: Path | None, as_json: bool) -> None:
    """List the peers the running node knows, with liveness and endpoints."""
    rows = client.call(resolve_state_dir(state_dir), "gossip.peers", {"network": network})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no peers known yet")
        return
    print_table(
        ("PEER", "NETWORK", "LIVENESS", "ENDPOINTS", "VERSION"),
        [
            (
                r["peer"][:12],
                r["network_name"] or r["network"],
                r["liveness"],
                ",".join(r["endpoints"]) or "-",
                str(r["version"]),
            )
            for r in sorted(rows, key=lambda r: (r["network"], r["peer"]))
        ],
    )


COMMANDS = [network_group, peers]
