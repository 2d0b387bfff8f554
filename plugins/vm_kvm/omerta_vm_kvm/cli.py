"""``omerta vm``: the VMs this provider hosts (``hosted``, ``inspect``), create, destroy and clean up.

Talks to the running node over its control socket. ``vm cleanup`` also works
with no node running: it then takes the node's lock itself and deletes every
artefact the registry records. Touches the control socket, or (cleanup without
a node) the registry and the artefacts it names.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

import click

from omerta_core.cli import json_option, print_table, resolve_state_dir, state_dir_option
from omerta_core.control import client
from omerta_core.errors import ControlError
from omerta_core.node import LOCK_FILE
from omerta_vm_kvm import libvirt_host
from omerta_vm_kvm.errors import KvmError
from omerta_vm_kvm.registry import REGISTRY_FILE, Registry
from omerta_vm_kvm.teardown import delete_artefact

#: Creating waits for the guest to boot; under TCG on a busy host that takes a while.
CREATE_TIMEOUT_S = 600.0


@click.group(name="vm")
def vm_group() -> None:
    """This provider's ephemeral VMs (plugin kvm)."""


@vm_group.command(name="hosted")
@state_dir_option
@json_option
def vm_list(state_dir: Path | None, as_json: bool) -> None:
    """List the VMs the running node hosts (``omerta vm list`` lists rentals when the rental plugin runs)."""
    rows = client.call(resolve_state_dir(state_dir), "vm.list")
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no VMs")
        return
    header = ("VM", "STATE", "IMAGE", "CPU", "MIB", "EXPIRES IN", "CONSUMER")
    table = [
        (
            r["vm_id"],
            r["state"],
            r["image"],
            str(r["vcpus"]),
            str(r["memory_mib"]),
            f"{max(0, r['expires_at'] - time.time()):.0f} s",
            r["consumer"][:12],
        )
        for r in rows
    ]
    print_table(header, table)


@vm_group.command(name="inspect")
@click.argument("vm_id")
@state_dir_option
@json_option
def vm_show(vm_id: str, state_dir: Path | None, as_json: bool) -> None:
    """Show one VM with every artefact the registry records for it."""
    detail = client.call(resolve_state_dir(state_dir), "vm.show", {"vm_id": vm_id})
    if as_json:
        click.echo(json.dumps(detail, indent=2))
        return
    for key, value in detail.items():
        if key != "artefacts":
            click.echo(f"{key:<12} {value}")
    for artefact in detail["artefacts"]:
        click.echo(f"{'artefact':<12} {artefact['kind']:<7} {artefact['name']}")


@vm_group.command(name="create")
@click.option("--image", required=True, help="Image name (a directory of the images directory).")
@click.option("--vcpus", type=int, default=1, show_default=True)
@click.option("--memory", "memory_mib", type=int, default=512, show_default=True, help="MiB.")
@click.option("--disk", "disk_gib", type=int, default=4, show_default=True, help="GiB.")
@click.option("--lease", "lease_seconds", type=int, default=3600, show_default=True, help="Seconds.")
@click.option(
    "--ssh-key", "ssh_key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Public key file."
)
@state_dir_option
@json_option
def vm_create(
    image: str,
    vcpus: int,
    memory_mib: int,
    disk_gib: int,
    lease_seconds: int,
    ssh_key_file: Path | None,
    state_dir: Path | None,
    as_json: bool,
) -> None:
    """Create a VM on the running node (for the operator; consumers request over the mesh)."""
    params: dict[str, Any] = {
        "image": image,
        "vcpus": vcpus,
        "memory_mib": memory_mib,
        "disk_gib": disk_gib,
        "lease_seconds": lease_seconds,
    }
    if ssh_key_file is not None:
        params["ssh_public_key"] = ssh_key_file.read_text()
    row = client.call(resolve_state_dir(state_dir), "vm.create", params, timeout=CREATE_TIMEOUT_S)
    click.echo(json.dumps(row, indent=2) if as_json else row["vm_id"])


@vm_group.command(name="destroy")
@click.argument("vm_id")
@state_dir_option
@json_option
def vm_destroy(vm_id: str, state_dir: Path | None, as_json: bool) -> None:
    """Delete a VM and every artefact it had."""
    result = client.call(resolve_state_dir(state_dir), "vm.destroy", {"vm_id": vm_id}, timeout=60)
    click.echo(json.dumps(result) if as_json else f"deleted {vm_id}")


@vm_group.command(name="cleanup")
@state_dir_option
@json_option
def vm_cleanup(state_dir: Path | None, as_json: bool) -> None:
    """Delete every leftover artefact the registry records (works with or without a running node)."""
    directory = resolve_state_dir(state_dir)
    try:
        result = client.call(directory, "vm.cleanup", timeout=120)
    except ControlError:
        result = {"removed_artefacts": sweep_offline(directory)}
    click.echo(json.dumps(result) if as_json else f"removed {result['removed_artefacts']} artefacts")


def sweep_offline(state_dir: Path) -> int:
    """With no node running, delete every recorded artefact and VM; return how many artefacts."""
    plugin_dir = state_dir / "plugins" / "kvm"
    if not (plugin_dir / REGISTRY_FILE).exists():
        return 0
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise KvmError(f"a node is running with {state_dir} but does not answer; stop it first") from exc
        registry = Registry(plugin_dir)
        conn = libvirt_host.connect(libvirt_host.DEFAULT_URI)
        try:
            removed = 0
            for artefact in registry.artefacts():
                delete_artefact(conn, artefact)
                registry.forget(artefact)
                removed += 1
            for row in registry.vms():
                registry.remove_vm(row.vm_id)
            return removed
        finally:
            conn.close()
            registry.close()
    finally:
        os.close(fd)
