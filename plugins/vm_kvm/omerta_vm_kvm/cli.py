"""``omerta vm``: the VMs this provider hosts (``hosted``, ``inspect``), create, renew, destroy and clean up; build
the test image.

Talks to the running node over its control socket. ``vm cleanup`` also works
with no node running: it then takes the node's lock itself and deletes every
artefact the registry records. Touches the control socket, or (cleanup without
a node) the registry and the artefacts it names.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

import click

from omerta_core import config as config_mod
from omerta_core.cli import CommandInterrupted, json_option, print_table, resolve_state_dir, state_dir_option
from omerta_core.console import progress
from omerta_core.control import client
from omerta_core.errors import ControlError
from omerta_core.node import LOCK_FILE
from omerta_vm_kvm import libvirt_host
from omerta_vm_kvm.errors import KvmError
from omerta_vm_kvm.guest_builder import GuestBuildError, build_image
from omerta_vm_kvm.registry import REGISTRY_FILE, Registry
from omerta_vm_kvm.teardown import delete_artefact

#: Creating waits for the guest to boot; under TCG on a busy host that takes a while.
CREATE_TIMEOUT_S = 600.0
#: Fields of ``vm show`` that are Unix times, shown as local dates with "in"/"ago".
TIME_FIELDS = ("created_at", "expires_at")


def readable_time(epoch: float, now: float) -> str:
    """``2026-11-29 18:02:11 (in 59 min)`` or ``(3 s ago)``."""
    stamp = datetime.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")
    delta = epoch - now
    span = abs(delta)
    amount = f"{span:.0f} s" if span < 120 else f"{span / 60:.0f} min" if span < 7200 else f"{span / 3600:.1f} h"
    return f"{stamp} ({'in ' + amount if delta >= 0 else amount + ' ago'})"


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
    """Show one VM (VM_ID: the id or a unique prefix) with every artefact the registry records for it."""
    detail = client.call(resolve_state_dir(state_dir), "vm.show", {"vm_id": vm_id})
    if as_json:
        click.echo(json.dumps(detail, indent=2))
        return
    now = time.time()
    for key, value in detail.items():
        if key in TIME_FIELDS and isinstance(value, int | float):
            click.echo(f"{key:<12} {readable_time(value, now)}")
        elif key != "artefacts":
            click.echo(f"{key:<12} {value}")
    for artefact in detail["artefacts"]:
        click.echo(f"{'artefact':<12} {artefact['kind']:<7} {artefact['name']}")


@vm_group.command(name="create")
@click.option("--image", required=True, help="Image name (a directory of the images directory).")
@click.option("--vcpus", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--memory", "memory_mib", type=click.IntRange(min=1), default=512, show_default=True, help="MiB.")
@click.option("--disk", "disk_gib", type=click.IntRange(min=1), default=4, show_default=True, help="GiB.")
@click.option("--lease", "lease_seconds", type=click.IntRange(min=1), default=3600, show_default=True, help="Seconds.")
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
    """Create a VM on the running node (for the operator; consumers request over the mesh).

    Shows what the node is doing while the VM boots. Ctrl-C before it is ready
    rolls the VM back: nothing is left running.
    """
    params: dict[str, Any] = {
        "image": image,
        "vcpus": vcpus,
        "memory_mib": memory_mib,
        "disk_gib": disk_gib,
        "lease_seconds": lease_seconds,
    }
    if ssh_key_file is not None:
        params["ssh_public_key"] = ssh_key_file.read_text()
    try:
        with progress("creating VM") as note:
            row = client.call(
                resolve_state_dir(state_dir), "vm.create", params, timeout=CREATE_TIMEOUT_S, on_progress=note
            )
    except KeyboardInterrupt:
        raise CommandInterrupted("interrupted: the node is deleting the VM it was creating") from None
    click.echo(json.dumps(row, indent=2) if as_json else row["vm_id"])


@vm_group.command(name="renew")
@click.argument("vm_id")
@click.argument("seconds", type=click.IntRange(min=1))
@state_dir_option
@json_option
def vm_renew(vm_id: str, seconds: int, state_dir: Path | None, as_json: bool) -> None:
    """Extend VM_ID's lease to end no sooner than SECONDS from now."""
    row = client.call(resolve_state_dir(state_dir), "vm.renew", {"vm_id": vm_id, "seconds": seconds})
    if as_json:
        click.echo(json.dumps(row, indent=2))
    else:
        click.echo(f"{row['vm_id']} expires {readable_time(row['expires_at'], time.time())}")


@vm_group.command(name="destroy")
@click.argument("vm_id")
@state_dir_option
@json_option
def vm_destroy(vm_id: str, state_dir: Path | None, as_json: bool) -> None:
    """Delete a VM (VM_ID: the id or a unique prefix) and every artefact it had."""
    result = client.call(resolve_state_dir(state_dir), "vm.destroy", {"vm_id": vm_id}, timeout=60)
    click.echo(json.dumps(result) if as_json else f"deleted {result['vm_id']}")


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


@vm_group.group(name="image")
def image_group() -> None:
    """Images VMs boot from."""


@image_group.command(name="build")
@click.option("--name", default="omk-test", show_default=True, help="Image name (its directory).")
@click.option(
    "--images-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where images live [default: plugins.kvm.images_dir, else <state>/plugins/kvm/images].",
)
@state_dir_option
@json_option
def image_build(name: str, images_dir: Path | None, state_dir: Path | None, as_json: bool) -> None:
    """Build the minimal test guest (a Debian cloud kernel and a busybox initramfs); cached once built."""
    if images_dir is None:
        directory = resolve_state_dir(state_dir)
        configured = config_mod.load(overrides={"node.state_dir": str(directory)}).get("plugins.kvm.images_dir")
        images_dir = Path(configured) if configured else directory / "plugins" / "kvm" / "images"
    try:
        with progress(f"building image {name} (downloads a Debian kernel the first time)"):
            built = build_image(images_dir, name)
    except GuestBuildError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps({"name": name, "path": str(built)}) if as_json else str(built))


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
