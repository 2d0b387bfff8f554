"""The libvirt calls the plugin makes: connect, start a transient domain, destroy, list.

Every call blocks (run it in a thread). Domains are started with
``VIR_DOMAIN_START_AUTODESTROY``: libvirt destroys them when the node's
connection closes, so a node killed with SIGKILL leaves no running guest.
Touches libvirt domains whose names it is given.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from omerta_vm_kvm.errors import HypervisorUnavailableError

try:
    import libvirt
except ImportError:  # pragma: no cover - libvirt-python is a dependency; reported by unusable_reason
    libvirt = None

DEFAULT_URI = "qemu:///system"
QEMU_BINARY = "qemu-system-x86_64"
#: Where libvirt's system instance records the pid of each running domain's QEMU.
QEMU_PID_DIR = Path("/run/libvirt/qemu")
#: How long a killed QEMU may take to be gone before libvirt's own destroy takes over.
KILL_WAIT_S = 1.0


def _silence(_context: object, _error: object) -> None:
    """libvirt prints every error to stderr by default; ours become exceptions instead."""


def unusable_reason(uri: str = DEFAULT_URI) -> str | None:
    """Why no VM can be created here, or ``None``. Never fakes a VM: it refuses."""
    if libvirt is None:
        return "libvirt-python is not installed (pip install libvirt-python)"
    for tool in (QEMU_BINARY, "qemu-img"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install qemu-system-x86 qemu-utils)"
    try:
        conn = connect(uri)
    except HypervisorUnavailableError as exc:
        return str(exc)
    conn.close()
    return None


def connect(uri: str) -> libvirt.virConnect:
    if libvirt is None:
        raise HypervisorUnavailableError("libvirt-python is not installed")
    libvirt.registerErrorHandler(_silence, None)
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise HypervisorUnavailableError(f"cannot reach libvirt at {uri} (is libvirtd running?): {exc}") from exc


def start_domain(conn: libvirt.virConnect, xml: str, paused: bool = False) -> None:
    """Start the domain (``paused``: QEMU runs, the guest's CPUs wait for :func:`resume_domain`)."""
    flags = libvirt.VIR_DOMAIN_START_AUTODESTROY | (libvirt.VIR_DOMAIN_START_PAUSED if paused else 0)
    conn.createXML(xml, flags)


def destroy_domain(conn: libvirt.virConnect, name: str) -> None:
    """Destroy the domain if it exists.

    Its QEMU is killed at once first: libvirt's destroy sends SIGTERM and polls every 200 ms,
    and QEMU shutting down on SIGTERM took 1.2-2 s under TCG on a loaded host, while the
    guest's disk is thrown away anyway. libvirt's destroy then only cleans up.
    """
    kill_qemu(name)
    try:
        domain = conn.lookupByName(name)
        domain.destroy()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_OPERATION_INVALID):
            raise


def kill_qemu(name: str, pid_dir: Path = QEMU_PID_DIR) -> bool:
    """SIGKILL the QEMU of domain ``name`` (from libvirt's pid file) and wait for it to go; True if one was killed.

    The pid is only trusted when that process's command line names the domain, so a stale
    pid file never kills another process.
    """
    try:
        pid = int((pid_dir / f"{name}.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    guest = f"guest={name}".encode()
    if not any(arg == guest or arg.startswith(guest + b",") for arg in cmdline.split(b"\0")):
        return False
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + KILL_WAIT_S
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return True


def _running(pid: int) -> bool:
    """Whether ``pid`` is still a live process (a zombie waiting to be reaped is not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] != "Z"


def suspend_domain(conn: libvirt.virConnect, name: str) -> None:
    conn.lookupByName(name).suspend()


def resume_domain(conn: libvirt.virConnect, name: str) -> None:
    conn.lookupByName(name).resume()


def domain_active(conn: libvirt.virConnect, name: str) -> bool:
    try:
        return bool(conn.lookupByName(name).isActive())
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return False
        raise


def domain_names(conn: libvirt.virConnect) -> list[str]:
    return [d.name() for d in conn.listAllDomains()]


def kvm_device_usable() -> bool:
    return os.access("/dev/kvm", os.R_OK | os.W_OK)
