"""The KVM boot probe: does a real Linux guest boot under ``kvm`` on this host?

``/dev/kvm`` existing is not enough (nested hosts often hang a guest kernel),
so the probe boots the given direct-boot image with domain type ``kvm`` and
waits for the guest's ready line. The verdict is cached per host boot in the
plugin's state directory. Blocking (run it in a thread). Touches one transient
domain and one console file, both recorded in the registry first by the caller.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from omerta_vm_kvm import libvirt_host
from omerta_vm_kvm.domain_xml import DomainSpec, domain_xml
from omerta_vm_kvm.images import BaseImage

PROBE_FILE = "kvm-probe.json"
#: A direct-boot guest reaches userspace in about 1 s under working KVM; 15 s leaves room on a loaded host.
PROBE_TIMEOUT_S = 15.0
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def cached_verdict(state_dir: Path) -> bool | None:
    path = state_dir / PROBE_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("boot_id") != _boot_id() or not isinstance(data.get("kvm"), bool):
        return None
    return bool(data["kvm"])


def store_verdict(state_dir: Path, kvm_works: bool) -> None:
    (state_dir / PROBE_FILE).write_text(json.dumps({"boot_id": _boot_id(), "kvm": kvm_works}))


def boot_probe(conn: Any, image: BaseImage, name: str, console: Path, ready_line: str) -> bool:
    """Boot ``image`` under KVM as domain ``name``; True when ``ready_line`` reaches the console."""
    if image.kernel is None or not libvirt_host.kvm_device_usable():
        return False
    spec = DomainSpec(
        name=name,
        uuid=str(uuid.uuid4()),
        domain_type="kvm",
        vcpus=1,
        memory_mib=128,
        console_log=console,
        kernel=image.kernel,
        initrd=image.initrd,
        cmdline=f"console=ttyS0 quiet panic=-1 omerta.vm={name}",
    )
    try:
        libvirt_host.start_domain(conn, domain_xml(spec))
        deadline = time.monotonic() + PROBE_TIMEOUT_S
        while time.monotonic() < deadline:
            if console.exists() and ready_line in console.read_text(errors="replace"):
                return True
            time.sleep(0.2)
        return False
    except Exception:
        return False
    finally:
        libvirt_host.destroy_domain(conn, name)


def _boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return "unknown"
