"""The ``[plugins.kvm]`` settings: defaults and their parsing into :class:`Settings`.

Pure. Touches nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omerta_core.errors import ConfigError
from omerta_vm_kvm.admission import Limits
from omerta_vm_kvm.libvirt_host import DEFAULT_URI

DOMAIN_TYPES = ("auto", "kvm", "qemu")

CONFIG_DEFAULTS: dict[str, Any] = {
    "libvirt_uri": DEFAULT_URI,
    "domain_type": "auto",  # "kvm" only where the boot probe shows KVM works, else "qemu" (TCG)
    "images_dir": "",  # empty: <state>/plugins/kvm/images
    "max_vms": 8,
    "max_vcpus_per_vm": os.cpu_count() or 1,
    "max_memory_mib_per_vm": 4096,
    "max_disk_gib_per_vm": 32,
    "total_memory_mib": 8192,
    "max_lease_s": 86400,
    "boot_timeout_s": 180.0,  # a cloud image under TCG on a busy host takes minutes
    "reconcile_interval_s": 1.0,
    # The guest NIC's MTU: 1229 makes every frame fit one 1248-byte datagram of the udp transport with the VPN's
    # 5-byte header (docs/vpn.md); raise it only with a tunnel that fragments.
    "nic_mtu": 1229,
    # The guest NIC offloads TCP segmentation and checksums: its TCP bursts reach the node (and the VPN) as
    # super-frames of up to 64 KiB, one read instead of one per segment. False: finished frames only.
    "nic_offloads": True,
    # The network namespace libvirt's QEMU runs in, when the node runs in another one (a NAT lab host):
    # TAPs are created there, where QEMU opens them by name. Empty: the node's own.
    "libvirt_netns": "",
}
#: The NIC MTU range: IPv6 needs 1280 on a real link, but the tunnel's guest has IPv4 only; 576 is IPv4's floor.
NIC_MTU_RANGE = (576, 9000)


@dataclass(frozen=True)
class Settings:
    libvirt_uri: str
    domain_type: str
    images_dir: Path
    limits: Limits
    boot_timeout_s: float
    reconcile_interval_s: float
    nic_mtu: int = 1229
    libvirt_netns: str | None = None
    nic_offloads: bool = True


def parse_settings(raw: dict[str, Any], state_dir: Path) -> Settings:
    config = {**CONFIG_DEFAULTS, **raw}
    try:
        limits = Limits(
            max_vms=int(config["max_vms"]),
            max_vcpus_per_vm=int(config["max_vcpus_per_vm"]),
            max_memory_mib_per_vm=int(config["max_memory_mib_per_vm"]),
            max_disk_gib_per_vm=int(config["max_disk_gib_per_vm"]),
            total_memory_mib=int(config["total_memory_mib"]),
            max_lease_s=int(config["max_lease_s"]),
        )
        boot_timeout_s = float(config["boot_timeout_s"])
        reconcile_interval_s = float(config["reconcile_interval_s"])
        nic_mtu = int(config["nic_mtu"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"plugins.kvm: {exc}") from exc
    domain_type = str(config["domain_type"])
    if domain_type not in DOMAIN_TYPES:
        raise ConfigError(f"plugins.kvm.domain_type must be one of {', '.join(DOMAIN_TYPES)}, got {domain_type!r}")
    if reconcile_interval_s <= 0 or boot_timeout_s <= 0:
        raise ConfigError("plugins.kvm.boot_timeout_s and reconcile_interval_s must be positive")
    if not NIC_MTU_RANGE[0] <= nic_mtu <= NIC_MTU_RANGE[1]:
        raise ConfigError(f"plugins.kvm.nic_mtu must be {NIC_MTU_RANGE[0]}-{NIC_MTU_RANGE[1]}, got {nic_mtu}")
    nic_offloads = config["nic_offloads"]
    if not isinstance(nic_offloads, bool):
        raise ConfigError(f"plugins.kvm.nic_offloads must be true or false, got {nic_offloads!r}")
    images_dir = Path(config["images_dir"]) if config["images_dir"] else state_dir / "images"
    return Settings(
        str(config["libvirt_uri"]),
        domain_type,
        images_dir,
        limits,
        boot_timeout_s,
        reconcile_interval_s,
        nic_mtu,
        str(config["libvirt_netns"]) or None,
        nic_offloads,
    )
