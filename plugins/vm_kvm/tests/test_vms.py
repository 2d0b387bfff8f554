"""Acceptance: real QEMU guests through a real `omerta node --plugins kvm` process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import libvirt
import pytest
import structlog
from omerta_vm_kvm import libvirt_host, network
from omerta_vm_kvm.errors import NotStartedError
from omerta_vm_kvm.guest_builder import READY_MARKER, build_test_guest
from omerta_vm_kvm.service import KvmHypervisor, domain_name, namespace_name, ready_line, tap_name
from omerta_vm_kvm.settings import parse_settings

from omerta_core.errors import ControlError
from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.hypervisor import VmRequest, VmState

pytestmark = [pytest.mark.root, pytest.mark.slow]

SMALL_VM = {"image": "omk-test", "memory_mib": 128, "disk_gib": 1, "lease_seconds": 600}
CONSUMER = PeerId.from_public_key(bytes(range(32)))
CONSUMER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHSEBynlPKdbiuOtwb4/CwY7joEKU8mm8qOSKx+Tjo5M test"
LIFECYCLE_STEPS = ["request", "admission", "create", "boot", "ready", "release", "stopped", "delete"]


def leftovers(state_dir: Path, vm_id: str) -> list[str]:
    """Every artefact of ``vm_id`` that still exists: domain, TAP, namespace, files."""
    found = []
    conn = libvirt_host.connect(libvirt_host.DEFAULT_URI)
    try:
        if domain_name(vm_id) in libvirt_host.domain_names(conn):
            found.append(f"domain {domain_name(vm_id)}")
    finally:
        conn.close()
    if network.link_exists(tap_name(vm_id)):
        found.append(f"link {tap_name(vm_id)}")
    if network.namespace_exists(namespace_name(vm_id)):
        found.append(f"netns {namespace_name(vm_id)}")
    vm_dir = state_dir / "plugins" / "kvm" / "vms" / vm_id
    if vm_dir.exists():
        found.append(f"dir {vm_dir}")
    return found


def steps_of(state_dir: Path, vm_id: str) -> list[str]:
    path = state_dir / "plugins" / "kvm" / "lifecycle.jsonl"
    return [e["step"] for e in map(json.loads, path.read_text().splitlines()) if e["vm_id"] == vm_id]


def wait_until_gone(state_dir: Path, vm_ids: list[str], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        left = [item for vm_id in vm_ids for item in leftovers(state_dir, vm_id)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def test_a_guest_boots_prints_its_marker_and_is_deleted(node: Any) -> None:
    chosen = uuid.uuid4().hex  # the caller may name the VM before it exists (a rental tells its consumer)
    vm = node.call("vm.create", {**SMALL_VM, "vm_id": chosen})
    assert vm["state"] == "ready" and vm["domain_type"] in ("kvm", "qemu") and vm["vm_id"] == chosen
    with pytest.raises(ControlError, match=f"VM id {chosen} is in use"):
        node.call("vm.create", {**SMALL_VM, "vm_id": chosen})
    console = Path(vm["console_log"])
    assert ready_line(vm["vm_id"]) in console.read_text(errors="replace")
    shown = node.call("vm.show", {"vm_id": vm["vm_id"]})
    kinds = sorted(a["kind"] for a in shown["artefacts"])
    assert kinds == ["dir", "domain", "file", "file", "netns", "tap"]
    assert len(leftovers(node.state_dir, vm["vm_id"])) == 3  # domain, namespace, directory (TAP is inside the ns)
    assert [r["vm_id"] for r in node.call("vm.list")] == [vm["vm_id"]]
    node.call("vm.destroy", {"vm_id": vm["vm_id"]})
    assert leftovers(node.state_dir, vm["vm_id"]) == []
    assert node.call("vm.list") == []
    assert steps_of(node.state_dir, vm["vm_id"]) == LIFECYCLE_STEPS


def test_five_guests_boot_at_once_and_are_all_deleted(node: Any) -> None:
    with ThreadPoolExecutor(5) as pool:
        vms = list(pool.map(lambda _i: node.call("vm.create", SMALL_VM, timeout=600), range(5)))
    ids = [vm["vm_id"] for vm in vms]
    assert len(set(ids)) == 5
    assert all(vm["state"] == "ready" for vm in vms)
    for vm in vms:
        assert ready_line(vm["vm_id"]) in Path(vm["console_log"]).read_text(errors="replace")
    with ThreadPoolExecutor(5) as pool:
        list(pool.map(lambda vm_id: node.call("vm.destroy", {"vm_id": vm_id}), ids))
    assert wait_until_gone(node.state_dir, ids, 0) == []


def test_kill_9_then_restart_deletes_both_vms_and_every_artefact(node: Any) -> None:
    ids = [node.call("vm.create", SMALL_VM)["vm_id"] for _ in range(2)]
    assert all(leftovers(node.state_dir, vm_id) for vm_id in ids)
    node.kill9()
    started = time.monotonic()
    node.start()
    left = wait_until_gone(node.state_dir, ids, timeout=10 - (time.monotonic() - started))
    assert left == []
    assert node.call("vm.list") == []
    status = node.call("status")
    assert status["services"]["hypervisor"]["kvm"]["reclaimed_at_start"] >= 2 * 5
    for vm_id in ids:
        assert steps_of(node.state_dir, vm_id)[-3:] == ["release", "stopped", "delete"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({**SMALL_VM, "memory_mib": 10**6}, "memory must be"),
        ({**SMALL_VM, "image": "no-such-image"}, "no image 'no-such-image'"),
        ({**SMALL_VM, "image": "../../etc"}, "not a plain image name"),
        ({**SMALL_VM, "ssh_public_key": "ssh-ed25519 AAAA-not-a-key"}, "SSH public key"),
        ({**SMALL_VM, "lease_seconds": 10**9}, "lease must be"),
        ({**SMALL_VM, "vcpus": "two"}, "vcpus must be an integer"),
        ({**SMALL_VM, "vm_id": "../../etc"}, "vm_id must be 32 lowercase hex digits"),
    ],
)
def test_invalid_requests_get_clear_errors_and_leave_nothing(node: Any, params: dict[str, Any], message: str) -> None:
    vms_dir = node.state_dir / "plugins" / "kvm" / "vms"
    with pytest.raises(ControlError, match=message):
        node.call("vm.create", params)
    assert node.call("vm.list") == []
    assert list(vms_dir.iterdir()) == []
    lines = node.state_dir / "plugins" / "kvm" / "lifecycle.jsonl"
    if lines.exists():
        assert all(json.loads(line)["step"] in ("request", "refused") for line in lines.read_text().splitlines())


def test_an_expired_lease_deletes_the_vm_and_a_renewal_extends_it(node: Any) -> None:
    short = node.call("vm.create", {**SMALL_VM, "lease_seconds": 2})
    renewed = node.call("vm.create", {**SMALL_VM, "lease_seconds": 2})
    extended = node.call("vm.renew", {"vm_id": renewed["vm_id"], "seconds": 300})
    assert extended["expires_at"] > renewed["expires_at"] + 200
    assert wait_until_gone(node.state_dir, [short["vm_id"]], timeout=30) == []
    assert [r["vm_id"] for r in node.call("vm.list")] == [renewed["vm_id"]]
    assert "expire" in steps_of(node.state_dir, short["vm_id"])


def test_node_shutdown_deletes_its_vms(node: Any) -> None:
    vm_id = node.call("vm.create", SMALL_VM)["vm_id"]
    node.stop()
    assert node.proc is not None and node.proc.returncode == 0
    assert leftovers(node.state_dir, vm_id) == []
    assert steps_of(node.state_dir, vm_id)[-3:] == ["release", "stopped", "delete"]


def test_cli_lists_shows_destroys_and_cleans_up(node: Any) -> None:
    def omerta(*args: str) -> str:
        argv = [sys.executable, "-c", "from omerta_core.cli import run; run()", *args]
        argv += ["--state-dir", str(node.state_dir)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    vm_id = node.call("vm.create", SMALL_VM)["vm_id"]
    assert [r["vm_id"] for r in json.loads(omerta("vm", "hosted", "--json"))] == [vm_id]
    assert vm_id in omerta("vm", "hosted")
    assert json.loads(omerta("vm", "inspect", vm_id, "--json"))["state"] == "ready"
    assert omerta("vm", "destroy", vm_id).strip() == f"deleted {vm_id}"
    assert leftovers(node.state_dir, vm_id) == []
    second = node.call("vm.create", SMALL_VM)["vm_id"]
    node.kill9()
    assert json.loads(omerta("vm", "cleanup", "--json"))["removed_artefacts"] == 6
    assert leftovers(node.state_dir, second) == []


def test_a_missing_vm_is_a_clear_error(node: Any) -> None:
    with pytest.raises(ControlError, match="no VM id starts with 'nope'"):
        node.call("vm.destroy", {"vm_id": "nope"})


def test_the_guest_builder_caches_its_image(images_dir: Path) -> None:
    image = images_dir / "omk-test"
    before = {p.name: p.stat().st_mtime_ns for p in image.iterdir()}
    assert build_test_guest(images_dir.parent) == image
    assert {p.name: p.stat().st_mtime_ns for p in image.iterdir()} == before
    assert READY_MARKER.encode() in __import__("gzip").decompress((image / "initrd.img").read_bytes())


def test_auto_domain_type_follows_a_real_kvm_boot_probe(node_factory: Any) -> None:
    node = node_factory("--set", "plugins.kvm.domain_type=auto")
    node.start()
    vm = node.call("vm.create", SMALL_VM)
    verdict = json.loads((node.state_dir / "plugins" / "kvm" / "kvm-probe.json").read_text())
    assert vm["domain_type"] == ("kvm" if verdict["kvm"] else "qemu")
    assert ready_line(vm["vm_id"]) in Path(vm["console_log"]).read_text(errors="replace")
    node.call("vm.destroy", {"vm_id": vm["vm_id"]})
    assert list((node.state_dir / "plugins" / "kvm" / "vms").iterdir()) == []
    conn = libvirt_host.connect(libvirt_host.DEFAULT_URI)
    try:
        assert not [n for n in libvirt_host.domain_names(conn) if n.startswith("omk-probe-")]
    finally:
        conn.close()


def test_stopping_the_node_during_a_boot_leaves_nothing(node: Any) -> None:
    events = node.state_dir / "plugins" / "kvm" / "lifecycle.jsonl"
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(node.call, "vm.create", SMALL_VM)
        deadline = time.monotonic() + 60
        while not (events.exists() and '"step": "boot"' in events.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        vm_id = json.loads(events.read_text().splitlines()[0])["vm_id"]
        node.stop()
        with pytest.raises(ControlError):
            pending.result(timeout=120)
    assert leftovers(node.state_dir, vm_id) == []
    steps = steps_of(node.state_dir, vm_id)
    assert {"boot", "release", "delete"} <= set(steps) and "ready" not in steps


def test_a_cloud_image_gets_a_seed_and_a_boot_timeout_leaves_nothing(
    node_factory: Any, images_dir: Path, tmp_path: Path
) -> None:
    cloud_images = tmp_path / "cloud-images"
    (cloud_images / "blank-cloud").mkdir(parents=True)
    disk = cloud_images / "blank-cloud" / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    node = node_factory(
        "--set", f"plugins.kvm.images_dir={cloud_images}",
        "--set", "plugins.kvm.boot_timeout_s=6",
        "--set", "plugins.kvm.domain_type=qemu",
    )  # fmt: skip
    node.start()
    with pytest.raises(ControlError, match="SSH public key is required"):
        node.call("vm.create", {**SMALL_VM, "image": "blank-cloud"})
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA consumer@test"
    vms_dir = node.state_dir / "plugins" / "kvm" / "vms"
    seeds_seen: list[Path] = []
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(node.call, "vm.create", {**SMALL_VM, "image": "blank-cloud", "ssh_public_key": key})
        while not pending.done():
            seeds_seen += list(vms_dir.glob("*/seed.iso"))
            time.sleep(0.05)
        with pytest.raises(ControlError, match="did not signal readiness within 6 s"):
            pending.result()
    assert seeds_seen, "the cloud image's NoCloud seed was never created"
    vm_id = seeds_seen[0].parent.name
    assert leftovers(node.state_dir, vm_id) == []
    assert {"boot", "failed", "delete"} <= set(steps_of(node.state_dir, vm_id))
    assert node.call("vm.list") == []


def test_a_held_vm_never_runs_and_is_deleted_when_its_caller_says_no(images_dir: Path, tmp_path: Path) -> None:
    """``create(request, go)`` makes everything with the guest's CPUs held before their first instruction (the
    rental's escrow confirmation runs meanwhile); ``go()`` answering no deletes it all, unstarted."""
    state_dir = tmp_path / "plugins" / "kvm"
    state_dir.mkdir(parents=True)
    settings = parse_settings({"images_dir": str(images_dir), "domain_type": "qemu"}, state_dir)
    hypervisor = KvmHypervisor(settings, state_dir, structlog.get_logger())
    vm_id = uuid.uuid4().hex
    request = VmRequest(consumer=CONSUMER, image="omk-test", vcpus=1, memory_mib=128, disk_gib=1, lease_seconds=60,
                        ssh_public_key=CONSUMER_KEY, vm_id=vm_id)  # fmt: skip
    seen: dict[str, Any] = {}

    def look() -> None:
        conn = libvirt_host.connect(libvirt_host.DEFAULT_URI)
        try:
            seen["domain state"] = conn.lookupByName(domain_name(vm_id)).state()[0]
        finally:
            conn.close()
        vm_dir = state_dir / "vms" / vm_id
        seen["console"] = (vm_dir / "console.log").read_bytes() if (vm_dir / "console.log").exists() else b""
        seen["initrd mode"] = (vm_dir / "initrd.img").stat().st_mode & 0o777
        seen["state"] = hypervisor.row(vm_id).state
        seen["host key"] = hypervisor.list()[0].ssh_host_key

    async def go() -> bool:
        await asyncio.to_thread(look)
        return False

    async def scenario() -> None:
        await hypervisor.start()
        try:
            with pytest.raises(NotStartedError):
                await hypervisor.create(request, go)
            assert hypervisor.list() == []
        finally:
            await hypervisor.stop()

    asyncio.run(scenario())
    assert seen["domain state"] == libvirt.VIR_DOMAIN_PAUSED and seen["console"] == b""
    assert seen["state"] is VmState.CREATING and seen["initrd mode"] == 0o600
    assert str(seen["host key"]).startswith("ssh-ed25519 ")
    assert wait_until_gone(tmp_path, [vm_id], 30) == []
    steps = steps_of(tmp_path, vm_id)
    assert "held" in steps and "boot" not in steps and steps[-1] == "delete", steps
