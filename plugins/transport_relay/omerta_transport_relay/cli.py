"""`omerta relay` commands: a running node's NAT class, relays, punching and (when serving) relay clients.

Talks to the node over its control socket only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from omerta_core.cli import json_option, print_table, resolve_state_dir, state_dir_option
from omerta_core.control import client


def _status(state_dir: Path | None) -> dict[str, Any]:
    return dict(client.call(resolve_state_dir(state_dir), "relay.status"))


@click.group(name="relay")
def relay_group() -> None:
    """Relays, NAT classification and hole punching of a running node."""


@relay_group.command(name="status")
@state_dir_option
@json_option
def status_command(state_dir: Path | None, as_json: bool) -> None:
    """Show observed endpoints, the NAT's mapping and filtering, and the relays this node holds."""
    status = _status(state_dir)
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return
    click.echo(f"observed:  {', '.join(status['observed']) or '-'}")
    click.echo(f"mapping:   {status['mapping']}")
    click.echo(f"filtering: {status['filtering']}")
    rows = [
        (r["relay"][:12], r["endpoint"], "yes" if r["healthy"] else "no", r["observed"] or "-")
        for r in status["relays"]
    ]
    if rows:
        click.echo("")
        print_table(("RELAY", "ENDPOINT", "HEALTHY", "OBSERVED"), rows)


@relay_group.command(name="peers")
@state_dir_option
@json_option
def peers_command(state_dir: Path | None, as_json: bool) -> None:
    """List peers this node has punched (or tried to), with the outcome."""
    punching = _status(state_dir)["punching"]
    if as_json:
        click.echo(json.dumps(punching, indent=2))
        return
    if not punching:
        click.echo("no punch attempts yet")
        return
    rows = [
        (peer[:12], row["state"] or "-", "yes" if row["direct"] else "no", str(row["failures"]))
        for peer, row in punching.items()
    ]
    print_table(("PEER", "ATTEMPT", "DIRECT", "FAILURES"), rows)


@relay_group.command(name="clients")
@state_dir_option
@json_option
def clients_command(state_dir: Path | None, as_json: bool) -> None:
    """List clients holding allocations on this node (when it serves as a relay)."""
    server = _status(state_dir)["server"]
    if server is None:
        raise click.ClickException("this node does not serve as a relay (set plugins.relay.serve=true)")
    if as_json:
        click.echo(json.dumps(server, indent=2))
        return
    rows = [(peer, c["endpoint"], str(c["forwarded"]), str(c["throttled"])) for peer, c in server["clients"].items()]
    if not rows:
        click.echo("no allocations")
        return
    print_table(("CLIENT", "ENDPOINT", "FORWARDED", "THROTTLED"), rows)


COMMANDS: list[click.Command] = [relay_group]
