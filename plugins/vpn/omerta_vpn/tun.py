"""Creating a TAP device through ``/dev/net/tun``; standard library only.

Used by the gateway's namespace helper, which may run under a different Python
than the node's (it imports nothing from omerta but this package's pure
modules). Touches ``/dev/net/tun`` and the TAP it names.
"""

from __future__ import annotations

import fcntl
import os
import struct

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def open_tap(name: str) -> int:
    """Create (or attach to) the TAP ``name`` in the caller's network namespace; return its descriptor."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd
