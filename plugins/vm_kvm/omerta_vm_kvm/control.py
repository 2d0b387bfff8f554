"""Control-API methods the running node serves for the ``kvm`` plugin (``vm.*``).

Each method finds the node's running ``kvm`` hypervisor and returns plain JSON.
Touches nothing itself.
"""

from __future__ import annotations

from typing import Any

from omerta_core.hookspecs import ControlMethod
from omerta_core.ids import resolve_prefix
from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.hypervisor import Hypervisor, VmRequest
from omerta_core.node import NodeContext
from omerta_vm_kvm.errors import AdmissionError, HypervisorUnavailableError
from omerta_vm_kvm.service import KvmHypervisor

_INT_FIELDS = ("vcpus", "memory_mib", "disk_gib", "lease_seconds")


def _hypervisor(node: NodeContext) -> KvmHypervisor:
    service = node.find(Hypervisor, "kvm")
    if not isinstance(service, KvmHypervisor):
        raise HypervisorUnavailableError("this node runs no kvm hypervisor (start it with --plugins kvm)")
    return service


def _vm_id(params: dict[str, Any], hypervisor: KvmHypervisor) -> str:
    """The full id of the VM that ``vm_id`` (a whole id or a unique prefix) names."""
    vm_id = params.get("vm_id")
    if not isinstance(vm_id, str) or not vm_id:
        raise AdmissionError("vm_id is required")
    return resolve_prefix(vm_id, [row.vm_id for row in hypervisor.rows()], "VM id")


def parse_request(params: dict[str, Any], default_consumer: str) -> VmRequest:
    image = params.get("image")
    if not isinstance(image, str):
        raise AdmissionError("image is required")
    numbers: dict[str, int] = {}
    for name in _INT_FIELDS:
        if name in params:
            value = params[name]
            if not isinstance(value, int) or isinstance(value, bool):
                raise AdmissionError(f"{name} must be an integer")
            numbers[name] = value
    key = params.get("ssh_public_key")
    if key is not None and not isinstance(key, str):
        raise AdmissionError("ssh_public_key must be a string")
    vm_id = params.get("vm_id")
    if vm_id is not None and not isinstance(vm_id, str):
        raise AdmissionError("vm_id must be a string")
    consumer = PeerId(str(params.get("consumer") or default_consumer))
    return VmRequest(consumer=consumer, image=image, ssh_public_key=key, vm_id=vm_id, **numbers)


async def vm_create(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    hypervisor = _hypervisor(node)
    info = await hypervisor.create(parse_request(params, node.peer_id))
    return hypervisor.row(info.vm_id).as_json()


def vm_list(node: NodeContext, _params: dict[str, Any]) -> list[dict[str, Any]]:
    return [row.as_json() for row in _hypervisor(node).rows()]


def vm_show(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    hypervisor = _hypervisor(node)
    vm_id = _vm_id(params, hypervisor)
    detail = hypervisor.row(vm_id).as_json()
    detail["artefacts"] = [{"kind": a.kind, "name": a.name} for a in hypervisor.artefacts(vm_id)]
    return detail


async def vm_destroy(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    hypervisor = _hypervisor(node)
    vm_id = _vm_id(params, hypervisor)
    await hypervisor.destroy(vm_id)
    return {"vm_id": vm_id, "deleted": True}


async def vm_renew(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    hypervisor = _hypervisor(node)
    seconds = params.get("seconds")
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise AdmissionError("seconds must be an integer")
    info = await hypervisor.renew(_vm_id(params, hypervisor), seconds)
    return hypervisor.row(info.vm_id).as_json()


async def vm_cleanup(node: NodeContext, _params: dict[str, Any]) -> dict[str, Any]:
    return {"removed_artefacts": await _hypervisor(node).reclaim()}


METHODS: dict[str, ControlMethod] = {
    "vm.create": vm_create,
    "vm.list": vm_list,
    "vm.show": vm_show,
    "vm.destroy": vm_destroy,
    "vm.renew": vm_renew,
    "vm.cleanup": vm_cleanup,
}
