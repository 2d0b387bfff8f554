"""``omerta offers`` and the consumer's ``omerta vm request|list|show|ssh|exec|topup|release`` (plus the
owner's ``omerta vm preempt``).

Each talks to the running node over its control socket; ``request`` and ``release`` follow the
rental and print each step with its time as it happens. ``ssh``/``exec`` log in over the consumer's
VPN with its key and the guest's pinned host key (:mod:`omerta_rental.ssh`). Touches the control
socket, that key, and runs ``ssh``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from omerta_core.cli import json_option, print_table, resolve_state_dir, state_dir_option
from omerta_core.control import client
from omerta_core.errors import OmertaError
from omerta_rental import ssh

#: How often ``request``/``release`` ask the node for new steps.
POLL_S = 0.2
#: Longest a request is followed (lock ≤ 2 min, a TCG boot on a busy host several minutes).
REQUEST_FOLLOW_S = 900.0
RELEASE_FOLLOW_S = 300.0
#: Steps that end ``vm request --wait ssh`` (besides the rental's outcome).
SSH_STEPS = {"ssh", "ssh failed", "ssh skipped", "vpn failed"}


class RentalCliError(OmertaError):
    """A one-line error of the rental commands."""


def rental_dir(state_dir: Path) -> Path:
    """The rental plugin's state directory: the consumer's SSH key and pinned host keys."""
    return state_dir / "plugins" / "rental"


def lease_seconds(hours: float) -> int:
    if not 0 < hours <= 24 * 365:
        raise RentalCliError("--hours must be more than 0 (fractions such as 0.05 are fine)")
    return max(1, round(hours * 3600))


def follow(state_dir: Path, rental: str, until: set[str], timeout: float, printed: int = 0) -> dict[str, Any]:
    """Print the rental's steps (after the first ``printed``) as they happen until one of ``until`` (or its
    outcome); return the rental."""
    deadline = time.monotonic() + timeout
    while True:
        shown = client.call(state_dir, "rental.show", {"rental": rental})
        events = shown["events"]
        for event in events[printed:]:
            click.echo(f"[{event['t']:7.1f} s] {event['step']:<10} {event['text']}")
        steps = {e["step"] for e in events[printed:]}
        printed = len(events)
        if shown["outcome"] is not None or steps & until:
            return dict(shown)
        if time.monotonic() > deadline:
            raise RentalCliError(f"rental {rental[:12]} still at '{shown['state']}' after {timeout:.0f} s")
        time.sleep(POLL_S)


@click.command(name="offers")
@click.option("--cpu", "vcpus", type=int, help="At least this many free vCPUs.")
@click.option("--mem", "memory_mib", type=int, help="At least this many free MiB of memory.")
@click.option("--image", help="Offering this image.")
@click.option("--max-price", type=int, help="At most this price per hour.")
@state_dir_option
@json_option
def offers_command(vcpus: int | None, memory_mib: int | None, image: str | None, max_price: int | None,
                   state_dir: Path | None, as_json: bool) -> None:  # fmt: skip
    """The providers' offers this node has seen, cheapest first."""
    params = {"vcpus": vcpus, "memory_mib": memory_mib, "image": image, "max_price": max_price}
    found = client.call(
        resolve_state_dir(state_dir), "rental.offers", {k: v for k, v in params.items() if v is not None}
    )
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("no matching offers seen yet")
        return
    header = ("PROVIDER", "PRICE/H", "FREE CPU", "FREE MIB", "DISK GIB", "MAX H", "REGION", "IMAGES")
    rows = [(o["provider"][:12], o["price"], o["free_cpu"], o["free_mem"], o["disk"], o["max_h"], o["region"],
             ",".join(o["img"])) for o in found]  # fmt: skip
    print_table(header, rows)


@click.group(name="vm")
def vm_group() -> None:
    """Rent VMs from providers (request, ssh, exec, release) and, on a provider, its own VMs."""


@vm_group.command(name="request")
@click.option("--cpu", "vcpus", type=int, default=1, show_default=True, help="vCPUs.")
@click.option("--mem", "memory_mib", type=int, default=128, show_default=True, help="Memory in MiB.")
@click.option("--disk", "disk_gib", type=int, default=1, show_default=True, help="Disk in GiB.")
@click.option("--image", required=True, help="Image name (see `omerta offers`).")
@click.option("--hours", type=float, default=1.0, show_default=True, help="Hours to pay for now (top up later).")
@click.option("--provider", help="This provider's peer id instead of the cheapest matching offer.")
@click.option("--max-price", type=int, help="Refuse a price per hour above this.")
@click.option("--activity", required=True, help='What you will run, e.g. "compile a kernel" (logged by the provider).')
@click.option(
    "--wait",
    type=click.Choice(["ssh", "ready"]),
    default="ssh",
    show_default=True,
    help="Return once SSH answers in the VM over the VPN (ssh), or once the provider says it is ready.",
)
@state_dir_option
@json_option
def vm_request(vcpus: int, memory_mib: int, disk_gib: int, image: str, hours: float, provider: str | None,
               max_price: int | None, activity: str, wait: str, state_dir: Path | None,
               as_json: bool) -> None:  # fmt: skip
    """Rent a VM: admission, escrow lock, creation, VPN, SSH; prints each step until SSH answers.

    Without the vpn plugin on this node the VM cannot be reached, and the command returns at ready.
    """
    state = resolve_state_dir(state_dir)
    public_key = ssh.public_key(rental_dir(state))
    params: dict[str, Any] = {"vcpus": vcpus, "memory_mib": memory_mib, "disk_gib": disk_gib, "image": image,
                              "lease_s": lease_seconds(hours), "activity": activity,
                              "ssh_public_key": public_key}  # fmt: skip
    if provider:
        params["provider"] = provider
    if max_price is not None:
        params["max_price"] = max_price
    rental = client.call(state, "rental.request", params)["rental"]
    if not as_json:
        click.echo(f"rental {rental}")
    shown = follow(state, rental, {"ready"}, REQUEST_FOLLOW_S)
    answered = any(e["step"] in SSH_STEPS for e in shown["events"])
    if wait == "ssh" and shown["outcome"] is None and shown["vpn_available"] and not answered:
        shown = follow(state, rental, SSH_STEPS, REQUEST_FOLLOW_S, len(shown["events"]))
    if as_json:
        click.echo(json.dumps(shown, indent=2))
    if shown["outcome"] is not None:
        raise RentalCliError(str(shown["outcome"]))
    failed = [e["text"] for e in shown["events"] if e["step"] in ("ssh failed", "vpn failed")]
    if wait == "ssh" and failed:
        raise RentalCliError(f"{failed[0]} (the rental runs; `omerta vm release {rental[:12]}` ends it)")


@vm_group.command(name="list")
@state_dir_option
@json_option
def vm_list(state_dir: Path | None, as_json: bool) -> None:
    """Rentals on this node: those it rents (consumer) and those it hosts (provider)."""
    rows = client.call(resolve_state_dir(state_dir), "rental.list")
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no rentals")
        return
    print_table(("RENTAL", "ROLE", "PEER", "STATE", "VM", "ADDRESS", "OUTCOME"),
                [(r["rental"][:12], r["role"], r["peer"][:12], r["state"], r["vm_id"] or "-", r["address"] or "-",
                  r["outcome"] or "-") for r in rows])  # fmt: skip


@vm_group.command(name="show")
@click.argument("rental")
@state_dir_option
@json_option
def vm_show(rental: str, state_dir: Path | None, as_json: bool) -> None:
    """One rental (id, id prefix or VM id) with every step and its time."""
    shown = client.call(resolve_state_dir(state_dir), "rental.show", {"rental": rental})
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return
    for key in ("rental", "role", "peer", "image", "vm_id", "address", "session", "outcome"):
        click.echo(f"{key:<9} {shown[key] or '-'}")
    for event in shown["events"]:
        click.echo(f"[{event['t']:7.1f} s] {event['step']:<10} {event['text']}")


def act_and_follow(state: Path, method: str, params: dict[str, Any], until: set[str]) -> None:
    """Ask the node to act on a rental, then print the rental's new steps until one of ``until`` (or its end)."""
    seen = len(client.call(state, "rental.show", {"rental": params["rental"]})["events"])
    rental = client.call(state, method, params)["rental"]
    follow(state, rental, until, RELEASE_FOLLOW_S, seen)


@vm_group.command(name="release")
@click.argument("rental")
@state_dir_option
def vm_release(rental: str, state_dir: Path | None) -> None:
    """End a rental: the provider deletes the VM and the escrow settles for the time used."""
    act_and_follow(resolve_state_dir(state_dir), "rental.release", {"rental": rental}, set())


@vm_group.command(name="topup")
@click.argument("rental")
@click.option("--hours", type=float, default=1.0, show_default=True, help="Hours to add to the lease.")
@state_dir_option
def vm_topup(rental: str, hours: float, state_dir: Path | None) -> None:
    """Pay for more hours; the lease grows by what the top-up pays."""
    params = {"rental": rental, "lease_s": lease_seconds(hours)}
    act_and_follow(resolve_state_dir(state_dir), "rental.topup", params, {"topped up", "top-up failed"})


@vm_group.command(name="preempt")
@click.argument("rental")
@state_dir_option
def vm_preempt(rental: str, state_dir: Path | None) -> None:
    """As the provider's owner, end someone's lease now (billed like any other end)."""
    act_and_follow(resolve_state_dir(state_dir), "rental.preempt", {"rental": rental}, set())


def _ssh_argv(state: Path, rental: str) -> list[str]:
    shown = client.call(state, "rental.show", {"rental": rental})
    if shown["role"] != "consumer" or shown["outcome"] is not None or not shown["address"]:
        raise RentalCliError(f"rental {rental} is not a ready rental of this node")
    if not shown.get("vpn"):
        raise RentalCliError("the VM is reachable only through the consumer VPN: run the node with the vpn plugin")
    directory = rental_dir(state)
    known = ssh.known_hosts(directory, shown["rental"])
    return ssh.ssh_argv(shown.get("enter", []), ssh.key_path(directory), known, shown["address"],
                        bool(shown["host_key"]))  # fmt: skip


@vm_group.command(name="ssh")
@click.argument("rental")
@state_dir_option
def vm_ssh(rental: str, state_dir: Path | None) -> None:
    """An interactive shell in the rented VM, over the VPN, with this consumer's key."""
    argv = _ssh_argv(resolve_state_dir(state_dir), rental)
    os.execvp(argv[0], argv)


@vm_group.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.argument("rental")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@state_dir_option
def vm_exec(rental: str, command: tuple[str, ...], state_dir: Path | None) -> None:
    """Run COMMAND in the rented VM (omerta vm exec VM -- CMD ...) and exit with its status."""
    argv = _ssh_argv(resolve_state_dir(state_dir), rental)
    sys.exit(subprocess.run([*argv, "--", *command], check=False).returncode)
