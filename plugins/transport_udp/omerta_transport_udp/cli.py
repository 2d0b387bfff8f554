"""`omerta udp` commands: inspect a running node's sessions and ask who listens at an address.

Talks to the node over its control socket only.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from omerta_core.cli import json_option, print_table, resolve_state_dir, state_dir_option
from omerta_core.control import client


@click.group(name="udp")
def udp_group() -> None:
    """The encrypted UDP transport of a running node."""


@udp_group.command(name="peers")
@state_dir_option
@json_option
def peers_command(state_dir: Path | None, as_json: bool) -> None:
    """List peers with path state, route, session age, reliable backlog and RTT."""
    rows = client.call(resolve_state_dir(state_dir), "udp.peers")["peers"]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no peers yet")
        return
    header = ("PEER", "STATE", "ROUTE", "AGE_S", "UNACKED", "RTT_MS", "RETRANSMITS")
    table = [
        (
            row["peer"][:12],
            row["state"],
            row["route"] or "-",
            "-" if row["session_age_s"] is None else str(row["session_age_s"]),
            str(row["unacked"]),
            "-" if row["rtt_ms"] is None else str(row["rtt_ms"]),
            str(row["retransmits"]),
        )
        for row in rows
    ]
    print_table(header, table)


@udp_group.command(name="identify")
@click.argument("endpoint", metavar="HOST:PORT")
@state_dir_option
@json_option
def identify_command(endpoint: str, state_dir: Path | None, as_json: bool) -> None:
    """Ask whoever listens at HOST:PORT for its peer id (unauthenticated until a session opens)."""
    result = client.call(resolve_state_dir(state_dir), "udp.identify", {"endpoint": endpoint})
    click.echo(json.dumps(result) if as_json else result["peer"])


COMMANDS: list[click.Command] = [udp_group]
