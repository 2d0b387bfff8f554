"""Admission: whether a VM request fits this provider's limits.

Pure: checks a request against :class:`Limits` and the resources the node's VMs
already use. Touches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from omerta_core.interfaces.hypervisor import VmRequest
from omerta_vm_kvm.errors import AdmissionError


@dataclass(frozen=True)
class Limits:
    """What one provider node lends out at most."""

    max_vms: int
    max_vcpus_per_vm: int
    max_memory_mib_per_vm: int
    max_disk_gib_per_vm: int
    total_memory_mib: int
    max_lease_s: int
    #: Below this the guest kernel cannot boot at all.
    min_memory_mib: int = 64


@dataclass(frozen=True)
class Usage:
    """What the node's live VMs hold now."""

    vms: int = 0
    memory_mib: int = 0


def admit(request: VmRequest, limits: Limits, usage: Usage) -> None:
    """Raise :class:`AdmissionError` naming the first limit the request breaks."""
    if not 1 <= request.vcpus <= limits.max_vcpus_per_vm:
        raise AdmissionError(f"vcpus must be 1-{limits.max_vcpus_per_vm}, got {request.vcpus}")
    if not limits.min_memory_mib <= request.memory_mib <= limits.max_memory_mib_per_vm:
        raise AdmissionError(
            f"memory must be {limits.min_memory_mib}-{limits.max_memory_mib_per_vm} MiB, got {request.memory_mib}"
        )
    if not 1 <= request.disk_gib <= limits.max_disk_gib_per_vm:
        raise AdmissionError(f"disk must be 1-{limits.max_disk_gib_per_vm} GiB, got {request.disk_gib}")
    if not 1 <= request.lease_seconds <= limits.max_lease_s:
        raise AdmissionError(f"lease must be 1-{limits.max_lease_s} s, got {request.lease_seconds}")
    if usage.vms >= limits.max_vms:
        raise AdmissionError(f"this provider already runs its maximum of {limits.max_vms} VMs")
    free = limits.total_memory_mib - usage.memory_mib
    if request.memory_mib > free:
        raise AdmissionError(f"only {free} MiB of memory is free, {request.memory_mib} MiB requested")
