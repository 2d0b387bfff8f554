"""`omerta udp` commands and `omerta ping`: a running node's sessions, who listens at an address, round trips.

Talks to the node over its control socket only.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from omerta_core.cli import json_option, print_table, resolve_state_dir, state_dir_option
from omerta_core.console import progress
from omerta_core.control import client

#: ``udp.identify`` tries three times with a second each; the CLI waits a little longer.
IDENTIFY_TIMEOUT_S = 15.0


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
    with progress(f"asking {endpoint}") as note:
        result = client.call(
            resolve_state_dir(state_dir),
            "udp.identify",
            {"endpoint": endpoint},
            timeout=IDENTIFY_TIMEOUT_S,
            on_progress=note,
        )
    click.echo(json.dumps(result) if as_json else result["peer"])


@click.command(name="ping")
@click.argument("peer")
@click.option("-c", "--count", type=click.IntRange(1, 100), default=3, show_default=True, help="Pings, one a second.")
@click.option("-m", "--message", default="", help="Test message for the peer to log (sent with the first ping).")
@state_dir_option
@json_option
def ping_command(peer: str, count: int, message: str, state_dir: Path | None, as_json: bool) -> None:
    """Ping PEER (a peer id or a unique prefix of one) over the mesh: path, round trips, direct or relayed."""
    with progress(f"pinging {peer}") as note:
        result = client.call(
            resolve_state_dir(state_dir),
            "udp.ping",
            {"peer": peer, "count": count, "message": message},
            timeout=15.0,
            on_progress=note,
        )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    rtts = result["rtt_ms"]
    how = "relayed" if result["relayed"] else "direct"
    click.echo(f"{result['peer']}  {how} ({result['route'] or 'no route'})")
    click.echo(
        f"{len(rtts)} replies; round trip min {min(rtts):.1f} ms, avg {sum(rtts) / len(rtts):.1f} ms, "
        f"max {max(rtts):.1f} ms"
    )
    if result["message"]:
        click.echo(f"test message delivered: {result['message']!r} (the peer logs it)")


COMMANDS: list[click.Command] = [udp_group, ping_command]
