"""Benchmark of the kvm plugin: request-to-console-marker and release-to-all-artefacts-gone.

Runs the `kvm` hypervisor service in-process against the local libvirtd with
the test guest (built once and cached in $OMERTA_KVM_BENCH_CACHE, default
/tmp/omk-bench-cache). Ten sequential VMs; each is timed from the create
request until its ready line is on the serial console, and from the release
request until its domain, TAP, namespace and files are all gone. The domain
type is chosen by the plugin's boot probe ("auto"). Needs root, libvirtd and
QEMU (scripts/setup-system). Prints p50 and p95 last, one per line.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import structlog
from omerta_vm_kvm import libvirt_host, network
from omerta_vm_kvm.guest_builder import build_test_guest
from omerta_vm_kvm.service import KvmHypervisor, domain_name, namespace_name, tap_name
from omerta_vm_kvm.settings import parse_settings

from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.hypervisor import VmRequest

RUNS = 10
CONSUMER = PeerId.from_public_key(bytes(32))


def artefacts_left(conn: object, state_dir: Path, vm_id: str) -> bool:
    return (
        domain_name(vm_id) in libvirt_host.domain_names(conn)  # type: ignore[arg-type]
        or network.link_exists(tap_name(vm_id))
        or network.namespace_exists(namespace_name(vm_id))
        or (state_dir / "vms" / vm_id).exists()
    )


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    rank = fraction * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


async def run(images_dir: Path, state_dir: Path) -> tuple[list[float], list[float], str]:
    settings = parse_settings({"images_dir": str(images_dir), "domain_type": "auto"}, state_dir)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    service = KvmHypervisor(settings, state_dir, structlog.get_logger())
    await service.start()
    conn = libvirt_host.connect(libvirt_host.DEFAULT_URI)
    boots: list[float] = []
    deletes: list[float] = []
    domain_type = "?"
    try:
        request = VmRequest(consumer=CONSUMER, image="omk-test", memory_mib=128, disk_gib=1, lease_seconds=600)
        info = await service.create(request)  # warm-up: runs the KVM boot probe once
        domain_type = service.row(info.vm_id).domain_type or "?"
        await service.destroy(info.vm_id)
        for index in range(RUNS):
            started = time.perf_counter()
            info = await service.create(request)
            boots.append(time.perf_counter() - started)
            started = time.perf_counter()
            await service.destroy(info.vm_id)
            while await asyncio.to_thread(artefacts_left, conn, state_dir, info.vm_id):
                await asyncio.sleep(0.005)
            deletes.append(time.perf_counter() - started)
            print(f"run {index + 1}: boot {boots[-1]:.3f} s, delete {deletes[-1]:.3f} s", flush=True)
    finally:
        conn.close()
        await service.stop()
    return boots, deletes, domain_type


def main() -> int:
    if os.geteuid() != 0:
        print("vm_kvm benchmark: needs root (network namespaces, libvirt)", file=sys.stderr)
        return 1
    reason = libvirt_host.unusable_reason()
    if reason:
        print(f"vm_kvm benchmark: {reason}", file=sys.stderr)
        return 1
    cache = Path(os.environ.get("OMERTA_KVM_BENCH_CACHE", "/tmp/omk-bench-cache"))
    images_dir = build_test_guest(cache).parent
    with tempfile.TemporaryDirectory(prefix="omk-bench-") as tmp:
        boots, deletes, domain_type = asyncio.run(run(images_dir, Path(tmp)))
    print(f"domain type: {domain_type}; {RUNS} runs; cores: {os.cpu_count()}; load: {os.getloadavg()[0]:.2f}")
    print(f"vm_boot_mean_s: {statistics.mean(boots):.3f}")
    print(f"vm_boot_p50_s: {percentile(boots, 0.50):.3f}")
    print(f"vm_boot_p95_s: {percentile(boots, 0.95):.3f}")
    print(f"vm_delete_p50_s: {percentile(deletes, 0.50):.3f}")
    print(f"vm_delete_p95_s: {percentile(deletes, 0.95):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
