"""``omerta vpn``: this node's tunnels (as a provider) and gateways (as a consumer).

Talks to the running node over its control socket. Touches nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from omerta_core.cli import json_option, print_table, resolve_state_dir, state_dir_option
from omerta_core.control import client


@click.group(name="vpn")
def vpn_group() -> None:
    """Tunnels of this provider's VMs and gateways of the VMs this consumer rents (plugin vpn)."""


@vpn_group.command(name="status")
@state_dir_option
@json_option
def vpn_status(state_dir: Path | None, as_json: bool) -> None:
    """Show tunnels, gateways and counters."""
    status = client.call(resolve_state_dir(state_dir), "vpn.status")
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return
    warm = f"keep-warm {status['keep_warm_ms']:g} ms" if status["keep_warm_ms"] else "keep-warm off"
    click.echo(
        f"frames {status['frames']}, guest MTU {status['guest_mtu']}, rogue events {status['rogue_events']}, {warm}"
    )
    if status["tunnels"]:
        rows = [(t["vm_id"], t["state"], t["consumer"][:12], _counters(t["counters"])) for t in status["tunnels"]]
        print_table(("TUNNEL (VM)", "STATE", "CONSUMER", "COUNTERS"), rows)
    if status["gateways"]:
        gateways = [
            (g["vm_id"], g["mode"], g["vm_address"], g["provider"][:12], _counters(g["counters"]))
            for g in status["gateways"]
        ]
        print_table(("GATEWAY (VM)", "MODE", "VM ADDRESS", "PROVIDER", "COUNTERS"), gateways)
    if not status["tunnels"] and not status["gateways"]:
        click.echo("no tunnels or gateways")


@vpn_group.command(name="attach")
@click.argument("vm_id")
@click.argument("provider")
@click.option("--isolated", is_flag=True, help="the VM reaches only this machine, not the internet")
@state_dir_option
@json_option
def vpn_attach(vm_id: str, provider: str, isolated: bool, state_dir: Path | None, as_json: bool) -> None:
    """Serve the gateway of VM_ID, rented from PROVIDER (a peer id); print the VM's address."""
    params: dict[str, Any] = {"vm_id": vm_id, "provider": provider}
    if isolated:
        params["mode"] = "isolated"
    gateway = client.call(resolve_state_dir(state_dir), "vpn.gateway.attach", params, timeout=60)
    if as_json:
        click.echo(json.dumps(gateway, indent=2))
        return
    click.echo(f"VM {vm_id}: {gateway['vm_address']} ({gateway['mode']}, MTU {gateway['mtu']})")
    click.echo(f"run commands next to it with: {' '.join(gateway['enter'])} COMMAND")


@vpn_group.command(name="detach")
@click.argument("vm_id")
@state_dir_option
def vpn_detach(vm_id: str, state_dir: Path | None) -> None:
    """Remove the gateway of VM_ID (namespace, dnsmasq, uplink)."""
    client.call(resolve_state_dir(state_dir), "vpn.gateway.detach", {"vm_id": vm_id})
    click.echo(f"gateway of VM {vm_id} removed")


def _counters(counters: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(counters.items()) if v)
