"""Interfaces between plugins: what each kind of backend must provide.

Plugins reach each other only through these protocols and the hooks in
:mod:`omerta_core.hookspecs`. Each module here is one backend kind, or what several share
(``common``: peer ids, endpoints; ``vnet``: the virtio-net header of offloaded frames); none does I/O.
"""

from omerta_core.interfaces.common import Endpoint, PeerId, Service

__all__ = ["Endpoint", "PeerId", "Service"]
