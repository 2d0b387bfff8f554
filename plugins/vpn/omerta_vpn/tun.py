"""Creating a TAP device through ``/dev/net/tun``; standard library only.

Used by the gateway's namespace helper, which may run under a different Python
than the node's (it imports nothing from omerta but this package's pure
modules). With ``vnet`` every read and write starts with a virtio-net header
(``IFF_VNET_HDR``), so the owner can write a TCP super-frame the kernel
segments or delivers whole (GSO); with ``offload`` too, the kernel hands the
owner super-frames of up to 64 KiB and frames with a partial checksum
(``TUNSETOFFLOAD``: checksum and TSO). Touches ``/dev/net/tun`` and the TAP it names.
"""

from __future__ import annotations

import fcntl
import os
import struct

TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04


def open_tap(name: str, *, vnet: bool = False, offload: bool = False) -> int:
    """Create (or attach to) the TAP ``name`` in the caller's network namespace; return its descriptor."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    flags = IFF_TAP | IFF_NO_PI | (IFF_VNET_HDR if vnet or offload else 0)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), flags))
        if offload:
            set_offload(fd)
    except OSError:
        os.close(fd)
        raise
    return fd


def set_offload(fd: int) -> None:
    """Let the kernel hand the owner of ``fd`` (a TAP with vnet headers) TCP super-frames and partial checksums.

    Needs no privilege: the descriptor's owner may call it, in any namespace.
    """
    fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
