"""Hook implementations of the ``macos`` plugin: a hypervisor record for macOS hosts.

The backend would drive Apple's Virtualization.framework; it is declared for
``darwin`` only, so on other platforms ``omerta plugins`` reports it unusable
and ``omerta node --plugins macos`` refuses with that reason. Touches nothing.
"""

from __future__ import annotations

from omerta_core import hookimpl
from omerta_core.errors import PluginUnavailableError
from omerta_core.interfaces.common import Service
from omerta_core.interfaces.hypervisor import Hypervisor
from omerta_core.node import NodeContext
from omerta_core.records import ServiceRecord

NOT_IMPLEMENTED = "the Virtualization.framework backend is not implemented yet"


def _not_implemented() -> str:
    return NOT_IMPLEMENTED


def _create(_node: NodeContext) -> Service:
    raise PluginUnavailableError(NOT_IMPLEMENTED)


@hookimpl
def omerta_services() -> list[ServiceRecord]:
    return [
        ServiceRecord(
            name="macos",
            provides=Hypervisor,
            factory=_create,
            description="ephemeral VMs through Apple's Virtualization.framework",
            platforms=("darwin",),
            unusable_reason=_not_implemented,
        )
    ]
