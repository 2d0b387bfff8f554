"""The ``kvm`` hypervisor service: admits, creates, renews and always deletes VMs.

Lifecycle of one VM: request -> admission -> create -> boot -> ready -> renew*
-> release or expire -> delete, each step a JSON line (:mod:`events`). Every
artefact is written to the registry before it is created; a reconciler loop
deletes VMs whose lease ran out or whose domain died, and at start every VM a
previous run of the node left behind is deleted. Blocking libvirt, netlink and
file work runs in threads. Touches libvirt domains, network namespaces and TAP
links named ``omk-*``/``omk*``, and files under the plugin's state directory.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import re
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from omerta_core.control.progress import report
from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.hypervisor import FramePort, VmInfo, VmRequest, VmState
from omerta_vm_kvm import guest_files, libvirt_host, network, probe, seed
from omerta_vm_kvm.admission import Usage, admit
from omerta_vm_kvm.domain_xml import DomainSpec, domain_xml
from omerta_vm_kvm.errors import (
    AdmissionError,
    BootError,
    HypervisorUnavailableError,
    KvmError,
    NotStartedError,
    UnknownVmError,
)
from omerta_vm_kvm.events import LifecycleLog
from omerta_vm_kvm.frame_port import PacketSocketFramePort
from omerta_vm_kvm.guest_builder import READY_MARKER, SSH_KEY_PARAM
from omerta_vm_kvm.images import BaseImage, resolve_image
from omerta_vm_kvm.registry import Artefact, Registry, VmRow
from omerta_vm_kvm.settings import Settings
from omerta_vm_kvm.ssh_keys import validate_ssh_public_key
from omerta_vm_kvm.teardown import delete_artefact

#: Every libvirt domain, namespace and TAP this plugin creates starts with this.
NAME_PREFIX = "omk"
#: How often the console log is read while waiting for the guest's ready line.
CONSOLE_POLL_S = 0.1
#: How often, while booting, the domain is checked to be still alive.
LIVENESS_POLL_S = 1.0
#: States in which a VM holds resources (counted by admission).
LIVE_STATES = frozenset({VmState.ADMITTED, VmState.CREATING, VmState.BOOTING, VmState.READY, VmState.PAUSED})
#: States in which the VM's TAP is in its namespace, so a frame port can be opened.
NIC_STATES = frozenset({VmState.BOOTING, VmState.READY, VmState.PAUSED})
#: Longest consumer key a direct-boot guest takes on its kernel command line (x86 allows 2048 bytes in all).
MAX_CMDLINE_KEY = 1600
#: States in which the lease runs and the domain must be alive.
RUNNING_STATES = frozenset({VmState.READY, VmState.PAUSED})
#: A VM id a caller may choose (``VmRequest.vm_id``): what ``uuid4().hex`` gives, so domain UUIDs derive from it.
VM_ID = re.compile(r"[0-9a-f]{32}")


def ready_line(vm_id: str) -> str:
    """What the guest prints on its serial console once it has booted."""
    return f"{READY_MARKER} vm={vm_id}"


def kernel_cmdline(vm_id: str, ssh_key: str | None) -> str:
    """The direct-boot guest's command line: serial console, VM id and the consumer's key (``TYPE:BASE64``)."""
    words = ["console=ttyS0", "quiet", "panic=-1", f"omerta.vm={vm_id}"]
    if ssh_key is not None:
        key_type, blob = ssh_key.split()[:2]
        words.append(f"{SSH_KEY_PARAM}={key_type}:{blob}")
    return " ".join(words)


def domain_name(vm_id: str) -> str:
    return f"{NAME_PREFIX}-{vm_id}"


def namespace_name(vm_id: str) -> str:
    return f"{NAME_PREFIX}-{vm_id}"


def tap_name(vm_id: str) -> str:
    return f"{NAME_PREFIX}{vm_id[: network.IFNAME_MAX - len(NAME_PREFIX)]}"


guest_mac = network.guest_mac


class KvmHypervisor:
    """A :class:`~omerta_core.interfaces.hypervisor.Hypervisor` on libvirt with QEMU guests."""

    def __init__(self, settings: Settings, state_dir: Path, log: Any) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self.vms_dir = state_dir / "vms"
        self.log = log.bind(backend="kvm")
        self.events = LifecycleLog(state_dir, self.log)
        self.incarnation = uuid.uuid4().hex
        self.registry: Registry | None = None
        self._conn: Any = None
        self._reconciler: asyncio.Task[None] | None = None
        self._teardowns: dict[str, asyncio.Task[None]] = {}
        self._probe_lock = asyncio.Lock()
        self._kvm_works: bool | None = None
        self._stopping = False
        self._host_keys: dict[str, str] = {}
        self.reclaimed = 0
        self.expired = 0

    # -- service lifecycle ------------------------------------------------------

    async def start(self) -> None:
        reason = await asyncio.to_thread(libvirt_host.unusable_reason, self.settings.libvirt_uri)
        if reason:
            raise HypervisorUnavailableError(reason)
        self.vms_dir.mkdir(mode=0o700, exist_ok=True)
        self.registry = Registry(self.state_dir)
        self._conn = await asyncio.to_thread(libvirt_host.connect, self.settings.libvirt_uri)
        self.reclaimed = await self.reclaim()
        self._reconciler = asyncio.create_task(self._reconcile_forever())

    async def stop(self) -> None:
        self._stopping = True
        if self._reconciler is not None:
            self._reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciler
            self._reconciler = None
        if self.registry is not None:
            ids = [row.vm_id for row in self.registry.vms()] + self.registry.orphan_vm_ids()
            await asyncio.gather(*(self._teardown(vm_id, "node-stop") for vm_id in ids), return_exceptions=True)
            self.registry.close()
            self.registry = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def status(self) -> dict[str, Any]:
        rows = self.registry.vms() if self.registry else []
        return {
            "vms": len(rows),
            "ready": sum(1 for r in rows if r.state is VmState.READY),
            "domain_type": self._domain_type_label(),
            "reclaimed_at_start": self.reclaimed,
            "expired": self.expired,
            "images_dir": str(self.settings.images_dir),
        }

    # -- the Hypervisor protocol -------------------------------------------------

    async def create(self, request: VmRequest, go: Callable[[], Awaitable[bool]] | None = None) -> VmInfo:
        registry = self._registry()
        if self._stopping:
            raise HypervisorUnavailableError("the node is stopping; no new VMs")
        vm_id = self._new_vm_id(request.vm_id)
        self.events.step(
            "request",
            vm_id,
            consumer=str(request.consumer),
            image=request.image,
            vcpus=request.vcpus,
            memory_mib=request.memory_mib,
            disk_gib=request.disk_gib,
            lease_s=request.lease_seconds,
        )
        try:
            image, ssh_key = self._admit(request)
        except AdmissionError as exc:
            self.events.step("refused", vm_id, reason=str(exc))
            raise
        now = time.time()
        row = VmRow(
            vm_id=vm_id,
            consumer=str(request.consumer),
            image=request.image,
            vcpus=request.vcpus,
            memory_mib=request.memory_mib,
            disk_gib=request.disk_gib,
            state=VmState.ADMITTED,
            created_at=now,
            expires_at=now + self.settings.boot_timeout_s + request.lease_seconds,
            console_log=str(self.vms_dir / vm_id / "console.log"),
            domain_type=None,
            incarnation=self.incarnation,
        )
        registry.add_vm(row)
        self.events.step("admission", vm_id, admitted=True)
        try:
            await self._build(row, image, ssh_key, request.lease_seconds, go)
        except BaseException as exc:
            interrupted = isinstance(exc, asyncio.CancelledError)
            self.events.step("failed", vm_id, reason=str(exc) or ("interrupted" if interrupted else type(exc).__name__))
            await asyncio.shield(self._teardown(vm_id, "failed"))
            if isinstance(exc, KvmError | asyncio.CancelledError):
                raise
            raise KvmError(f"creating VM {vm_id} failed: {exc or 'unexpected error'} (see the node's log)") from exc
        return self._info(self._row(vm_id))

    def _new_vm_id(self, wanted: str | None) -> str:
        """The id of a new VM: the caller's choice (checked), else a fresh one."""
        if wanted is None:
            return uuid.uuid4().hex
        if not isinstance(wanted, str) or not VM_ID.fullmatch(wanted):
            raise AdmissionError("vm_id must be 32 lowercase hex digits")
        registry = self._registry()
        if any(row.vm_id == wanted for row in registry.vms()) or registry.artefacts(wanted):
            raise AdmissionError(f"VM id {wanted} is in use")
        return wanted

    async def destroy(self, vm_id: str) -> None:
        self._row(vm_id)
        await self._teardown(vm_id, "release")

    async def renew(self, vm_id: str, seconds: int) -> VmInfo:
        row = self._row(vm_id)
        if row.state not in LIVE_STATES:
            raise UnknownVmError(f"VM {vm_id} is being deleted")
        max_lease = self.settings.limits.max_lease_s
        if not 1 <= seconds <= max_lease:
            raise AdmissionError(f"lease renewal must be 1-{max_lease} s, got {seconds}")
        expires_at = max(row.expires_at, time.time() + seconds)
        self._registry().set_expiry(vm_id, expires_at)
        self.events.step("renew", vm_id, expires_at=round(expires_at, 3))
        return self._row(vm_id).info()

    def list(self) -> list[VmInfo]:
        return [self._info(row) for row in self._registry().vms()]

    def _info(self, row: VmRow) -> VmInfo:
        return dataclasses.replace(row.info(), ssh_host_key=self._host_keys.get(row.vm_id))

    async def reclaim(self) -> int:
        """Delete every VM of an earlier run of the node and every artefact without a VM."""
        registry = self._registry()
        stale = [row.vm_id for row in registry.vms() if row.incarnation != self.incarnation]
        stale += registry.orphan_vm_ids()
        before = len(registry.artefacts())
        await asyncio.gather(*(self._teardown(vm_id, "reclaim") for vm_id in stale), return_exceptions=True)
        return before - len(registry.artefacts())

    # -- beyond the protocol ------------------------------------------------------

    def rows(self) -> builtins.list[VmRow]:
        return self._registry().vms()

    def row(self, vm_id: str) -> VmRow:
        return self._row(vm_id)

    def artefacts(self, vm_id: str) -> builtins.list[Artefact]:
        return self._registry().artefacts(vm_id)

    async def pause(self, vm_id: str) -> VmInfo:
        row = self._row(vm_id)
        if row.state is VmState.READY:
            await asyncio.to_thread(libvirt_host.suspend_domain, self._conn, domain_name(vm_id))
            self._registry().set_state(vm_id, VmState.PAUSED)
            self.events.step("pause", vm_id)
        elif row.state is not VmState.PAUSED:
            raise KvmError(f"VM {vm_id} is {row.state.value}; only a ready VM can be paused")
        return self._row(vm_id).info()

    async def resume(self, vm_id: str) -> VmInfo:
        row = self._row(vm_id)
        if row.state is VmState.PAUSED:
            await asyncio.to_thread(libvirt_host.resume_domain, self._conn, domain_name(vm_id))
            self._registry().set_state(vm_id, VmState.READY)
            self.events.step("resume", vm_id)
        elif row.state is not VmState.READY:
            raise KvmError(f"VM {vm_id} is {row.state.value}; only a paused VM can be resumed")
        return self._row(vm_id).info()

    async def open_frame_port(self, vm_id: str) -> FramePort:
        """The VM's TAP as a frame port: a packet socket on it inside the VM's namespace."""
        row = self._row(vm_id)
        if row.state not in NIC_STATES:
            raise KvmError(f"VM {vm_id} is {row.state.value}; its NIC is not up")
        sock = await asyncio.to_thread(network.open_frame_socket, namespace_name(vm_id), tap_name(vm_id))
        return PacketSocketFramePort(sock, self.settings.nic_mtu)

    # -- creation -----------------------------------------------------------------

    def _admit(self, request: VmRequest) -> tuple[BaseImage, str | None]:
        if not isinstance(request.consumer, str):
            raise AdmissionError("consumer must be a peer id")
        PeerId(request.consumer)
        image = resolve_image(self.settings.images_dir, request.image)
        ssh_key = validate_ssh_public_key(request.ssh_public_key) if request.ssh_public_key is not None else None
        if not image.boots_directly and ssh_key is None:
            raise AdmissionError(f"image {image.name!r} is a cloud image: an SSH public key is required")
        if image.boots_directly and ssh_key is not None and len(ssh_key) > MAX_CMDLINE_KEY:
            raise AdmissionError(f"image {image.name!r} boots directly and takes SSH keys of at most "
                                 f"{MAX_CMDLINE_KEY} characters; use an ed25519 key")  # fmt: skip
        live = [r for r in self._registry().vms() if r.state in LIVE_STATES]
        admit(request, self.settings.limits, Usage(vms=len(live), memory_mib=sum(r.memory_mib for r in live)))
        return image, ssh_key

    async def _build(self, row: VmRow, image: BaseImage, ssh_key: str | None, lease_s: int,
                     go: Callable[[], Awaitable[bool]] | None) -> None:  # fmt: skip
        registry = self._registry()
        vm_id = row.vm_id
        registry.set_state(vm_id, VmState.CREATING)
        if self._kvm_works is None and self.settings.domain_type == "auto" and not probe.cached_verdict(self.state_dir):
            report("checking whether KVM works here (first VM only, up to half a minute)")
        domain_type = await self._domain_type(image)
        report(f"preparing disk, network and domain ({domain_type})")
        registry.set_domain_type(vm_id, domain_type)
        vm_dir = self.vms_dir / vm_id
        await self._make(Artefact(vm_id, "dir", str(vm_dir)), vm_dir.mkdir, 0o700)
        overlay = vm_dir / "disk.qcow2"
        await self._make(Artefact(vm_id, "file", str(overlay)), _create_overlay, image.disk, overlay, row.disk_gib)
        seed_iso, initrd = None, image.initrd
        if image.boots_directly and ssh_key is not None and image.initrd is not None:
            # the guest's host key, made here and appended to its own copy of the image's initramfs
            initrd = vm_dir / "initrd.img"
            guest_key = guest_files.dropbear_host_key()
            await self._make(Artefact(vm_id, "file", str(initrd)), guest_files.write_vm_initrd, image.initrd, initrd,
                             guest_key)  # fmt: skip
            self._host_keys[vm_id] = guest_key.public
        elif not image.boots_directly and ssh_key is not None:
            seed_iso = vm_dir / "seed.iso"
            host_key = await asyncio.to_thread(seed.host_key_pair)
            seed_args = (seed_iso, vm_id, ssh_key, ready_line(vm_id), guest_mac(vm_id), host_key)
            await self._make(Artefact(vm_id, "file", str(seed_iso)), seed.write_seed_iso, *seed_args)
            self._host_keys[vm_id] = host_key.public
        console = vm_dir / "console.log"
        self._registry().record(Artefact(vm_id, "file", str(console)))
        namespace, tap = namespace_name(vm_id), tap_name(vm_id)
        tap_artefact = network.tap_artefact(tap, self.settings.libvirt_netns)
        await self._make(Artefact(vm_id, "netns", namespace), network.create_namespace, namespace)
        await self._make(Artefact(vm_id, "tap", tap_artefact), network.create_tap, tap_artefact)
        spec = DomainSpec(
            name=domain_name(vm_id),
            uuid=str(uuid.UUID(vm_id)),
            domain_type=domain_type,
            vcpus=row.vcpus,
            memory_mib=row.memory_mib,
            console_log=console,
            overlay=overlay,
            tap=tap,
            mac=guest_mac(vm_id),
            mtu=self.settings.nic_mtu,
            nic_offloads=self.settings.nic_offloads,
            kernel=image.kernel,
            initrd=initrd,
            cmdline=kernel_cmdline(vm_id, ssh_key if image.boots_directly else None),
            seed_iso=seed_iso,
        )
        self.events.step("create", vm_id, domain=spec.name, domain_type=domain_type, netns=namespace, tap=tap)
        held = go is not None
        await self._make(Artefact(vm_id, "domain", spec.name), libvirt_host.start_domain, self._conn, domain_xml(spec),
                         held)  # fmt: skip
        await asyncio.to_thread(network.move_tap_into, tap_artefact, namespace, self.settings.nic_mtu)
        if go is not None:
            self.events.step("held", vm_id)
            if not await go():
                raise NotStartedError(f"VM {vm_id} was not started: its requester withdrew it")
            await asyncio.to_thread(libvirt_host.resume_domain, self._conn, spec.name)
        registry.set_state(vm_id, VmState.BOOTING)
        self.events.step("boot", vm_id)
        report(f"VM {vm_id[:8]} is booting; waiting for it to signal readiness")
        started = time.monotonic()
        await self._wait_ready(vm_id, spec.name, console)
        expires_at = time.time() + lease_s  # the lease runs from the moment the consumer can use the VM
        registry.set_expiry(vm_id, expires_at)
        registry.set_state(vm_id, VmState.READY)
        self.events.step("ready", vm_id, boot_s=round(time.monotonic() - started, 3), expires_at=round(expires_at, 3))

    async def _make(self, artefact: Artefact, create: Any, *args: Any) -> None:
        """Record ``artefact`` durably, then create it (refused once the node is stopping)."""
        if self._stopping:
            raise KvmError("the node is stopping; VM creation abandoned")
        self._registry().record(artefact)
        await asyncio.to_thread(create, *args)

    async def _wait_ready(self, vm_id: str, name: str, console: Path) -> None:
        """Wait for the guest's ready line."""
        wanted = ready_line(vm_id).encode()
        deadline = time.monotonic() + self.settings.boot_timeout_s
        next_liveness = time.monotonic() + LIVENESS_POLL_S
        offset, tail = 0, b""
        while True:
            if console.exists():
                with console.open("rb") as stream:
                    stream.seek(offset)
                    chunk = stream.read()
                offset += len(chunk)
                tail = (tail + chunk)[-(len(wanted) + 4096) :]
                if wanted in tail:
                    return
            now = time.monotonic()
            if now >= deadline:
                raise BootError(f"VM {vm_id} did not signal readiness within {self.settings.boot_timeout_s:.0f} s")
            if now >= next_liveness:
                next_liveness = now + LIVENESS_POLL_S
                if not await asyncio.to_thread(libvirt_host.domain_active, self._conn, name):
                    # the console goes with the VM's artefacts: keep its end in the log for diagnosis
                    self.log.warning("VM stopped while booting", vm_id=vm_id,
                                     console_tail=tail[-1500:].decode(errors="replace"))  # fmt: skip
                    raise BootError(f"VM {vm_id}: its domain stopped while booting")
            await asyncio.sleep(CONSOLE_POLL_S)

    async def _domain_type(self, image: BaseImage) -> str:
        if self.settings.domain_type != "auto":
            return self.settings.domain_type
        async with self._probe_lock:
            if self._kvm_works is None:
                self._kvm_works = probe.cached_verdict(self.state_dir)
            if self._kvm_works is None and image.boots_directly:
                self._kvm_works = await self._run_probe(image)
                probe.store_verdict(self.state_dir, self._kvm_works)
        return "kvm" if self._kvm_works else "qemu"

    async def _run_probe(self, image: BaseImage) -> bool:
        probe_id = f"probe-{uuid.uuid4().hex[:12]}"
        name = f"{NAME_PREFIX}-{probe_id}"
        console = self.vms_dir / f"{probe_id}.console.log"
        registry = self._registry()
        registry.record(Artefact(probe_id, "file", str(console)))
        registry.record(Artefact(probe_id, "domain", name))
        try:
            works = await asyncio.to_thread(probe.boot_probe, self._conn, image, name, console, ready_line(name))
        finally:
            await self._teardown(probe_id, "probe-done")
        self.log.info("kvm boot probe", kvm_works=works)
        return works

    def _domain_type_label(self) -> str:
        if self.settings.domain_type != "auto":
            return self.settings.domain_type
        return {None: "auto (not probed yet)", True: "kvm", False: "qemu"}[self._kvm_works]

    # -- deletion -------------------------------------------------------------------

    async def _teardown(self, vm_id: str, reason: str) -> None:
        """Delete a VM's artefacts newest first, then the VM; joins a teardown already running."""
        running = self._teardowns.get(vm_id)
        if running is None:
            running = asyncio.create_task(self._delete_everything(vm_id, reason))
            self._teardowns[vm_id] = running
            running.add_done_callback(lambda _task: self._teardowns.pop(vm_id, None))
        await asyncio.shield(running)

    async def _delete_everything(self, vm_id: str, reason: str) -> None:
        registry = self._registry()
        started = time.monotonic()
        row = registry.vm(vm_id)
        if row is not None:
            registry.set_state(vm_id, VmState.RELEASING)
            self.events.step("expire" if reason == "expire" else "release", vm_id, reason=reason)
        artefacts = registry.artefacts(vm_id)
        domains = [a for a in artefacts if a.kind == "domain"]
        # QEMU first, at once (dead within ~10 ms): then nothing holds the TAP, namespace or files, and
        # libvirt's destroy, which returns only once the dead QEMU is reaped, runs beside the rest
        for domain in domains:
            await asyncio.to_thread(libvirt_host.kill_qemu, domain.name)
        failures: builtins.list[str] = []

        async def everything_but_the_domain() -> None:
            await self._delete_in_order([a for a in artefacts if a.kind != "domain"], failures)
            if row is not None and not failures:
                self.events.step("stopped", vm_id, reason=reason, stopped_s=round(time.monotonic() - started, 3))

        await asyncio.gather(self._delete_in_order(domains, failures), everything_but_the_domain())
        registry.remove_vm(vm_id)
        self._host_keys.pop(vm_id, None)
        if failures:
            self.events.step("delete-incomplete", vm_id, reason=reason, failures=failures)
            raise KvmError(f"VM {vm_id}: could not delete {'; '.join(failures)}")
        if row is not None:
            self.events.step("delete", vm_id, reason=reason, delete_s=round(time.monotonic() - started, 3))

    async def _delete_in_order(self, artefacts: builtins.list[Artefact], failures: builtins.list[str]) -> None:
        """Delete ``artefacts`` one after the other, forgetting each deleted one; failures are collected."""
        registry = self._registry()
        for artefact in artefacts:
            try:
                await asyncio.to_thread(delete_artefact, self._conn, artefact)
            except Exception as exc:
                failures.append(f"{artefact.kind} {artefact.name}: {exc}")
                continue
            registry.forget(artefact)

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reconcile_interval_s)
            try:
                await self._reconcile_once()
            except Exception:
                self.log.exception("reconcile failed")

    async def _reconcile_once(self) -> None:
        now = time.time()
        for row in self._registry().vms():
            if row.vm_id in self._teardowns:
                continue
            if row.incarnation != self.incarnation or row.state is VmState.RELEASING:
                reason = "reclaim"
            elif row.state in RUNNING_STATES and row.expires_at <= now:
                reason = "expire"
                self.expired += 1
            elif row.state in RUNNING_STATES and not await asyncio.to_thread(
                libvirt_host.domain_active, self._conn, domain_name(row.vm_id)
            ):
                reason = "domain-gone"
            else:
                continue
            self._spawn_teardown(row.vm_id, reason)

    def _spawn_teardown(self, vm_id: str, reason: str) -> None:
        task = asyncio.create_task(self._teardown(vm_id, reason))
        task.add_done_callback(_log_failure(self.log, vm_id))

    # -- helpers ------------------------------------------------------------------------

    def _registry(self) -> Registry:
        if self.registry is None:
            raise HypervisorUnavailableError("the kvm hypervisor is not running")
        return self.registry

    def _row(self, vm_id: str) -> VmRow:
        row = self._registry().vm(vm_id) if isinstance(vm_id, str) else None
        if row is None:
            raise UnknownVmError(f"no VM {str(vm_id)[:64]!r} on this node")
        return row


def _create_overlay(base: Path, overlay: Path, disk_gib: int) -> None:
    """A qcow2 overlay on the read-only base, its virtual size the VM's disk limit."""
    argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(overlay), f"{disk_gib}G"]
    done = subprocess.run(argv, capture_output=True, check=False)
    if done.returncode != 0:
        raise KvmError(f"qemu-img could not create the overlay: {done.stderr.decode(errors='replace').strip()}")


def _log_failure(log: Any, vm_id: str) -> Any:
    def report(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.warning("vm teardown failed; the reconciler retries", vm_id=vm_id, error=str(task.exception()))

    return report
