"""Hook implementations of the ``kvm`` plugin, registered through the ``omerta`` entry point.

Registers the hypervisor backend (refusing with a reason when libvirt or QEMU
is missing: never a fake VM), its configuration defaults, control methods and
the ``omerta vm`` command group. Touches nothing itself.
"""

from __future__ import annotations

import sys
from typing import Any

import click

import omerta_core
from omerta_core.hookspecs import ControlMethod
from omerta_core.interfaces.hypervisor import Hypervisor
from omerta_core.node import NodeContext
from omerta_core.records import ServiceRecord
from omerta_vm_kvm import control, libvirt_host
from omerta_vm_kvm.cli import vm_group
from omerta_vm_kvm.service import KvmHypervisor
from omerta_vm_kvm.settings import CONFIG_DEFAULTS, parse_settings


def build(node: NodeContext) -> KvmHypervisor:
    state_dir = node.plugin_state_dir("kvm")
    return KvmHypervisor(parse_settings(node.plugin_config("kvm"), state_dir), state_dir, node.log)


def _unusable_reason() -> str | None:
    if sys.platform != "linux":
        return None  # the platform check already refuses
    return libvirt_host.unusable_reason()


@omerta_core.hookimpl
def omerta_services() -> list[ServiceRecord]:
    return [
        ServiceRecord(
            name="kvm",
            provides=Hypervisor,
            factory=build,
            description="KVM/QEMU through libvirt: ephemeral VMs that are always deleted",
            platforms=("linux",),
            unusable_reason=_unusable_reason,
        )
    ]


@omerta_core.hookimpl
def omerta_config_defaults() -> dict[str, Any]:
    return dict(CONFIG_DEFAULTS)


@omerta_core.hookimpl
def omerta_control_methods() -> dict[str, ControlMethod]:
    return control.METHODS


@omerta_core.hookimpl
def omerta_cli_commands() -> list[click.Command]:
    return [vm_group]
