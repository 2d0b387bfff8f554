"""The frame port on a real TAP, with the test in QEMU's place: finished frames, TCP super-frames, bad headers.

The TAP lives in a namespace of its own; the test holds its descriptor with
virtio-net headers and TSO on, as QEMU does for a guest whose NIC offloads
segmentation, so what it writes is what a guest sends and what it reads is
what a guest gets. No VM boots (``test_frames.py`` has the real guest).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import select
import socket
import struct
from collections.abc import Iterator

import pytest
from omerta_vm_kvm import network
from omerta_vm_kvm.frame_port import PacketSocketFramePort
from pyroute2 import IPRoute

from omerta_core.interfaces import vnet
from omerta_core.interfaces.hypervisor import OffloadPort

pytestmark = [pytest.mark.root]

TAP = "omkt0"
MTU = 1229
GUEST_MAC, OTHER_MAC = bytes.fromhex("525400c0ffee"), bytes.fromhex("026f6d000001")
# What QEMU does with the TAP: attach with virtio-net headers, then take the offloads the guest negotiated.
TUNSETIFF, TUNSETOFFLOAD = 0x400454CA, 0x400454D0
IFF_TAP, IFF_NO_PI, IFF_VNET_HDR = 0x0002, 0x1000, 0x4000
TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6 = 0x01, 0x02, 0x04
#: The IPv4 TCP header lengths and where the TCP checksum sits, for the headers below.
HEADERS = 14 + 20 + 20
CSUM_START, CSUM_OFFSET = 14 + 20, 16


def tcp_frame(source: bytes, destination: bytes, payload: bytes) -> bytes:
    """An IPv4 TCP segment (checksums left to the receiver, as an offloading sender leaves them)."""
    ip = struct.pack(
        ">BBHHHBBH4s4s",
        0x45,
        0,
        20 + 20 + len(payload),
        1,
        0x4000,
        64,
        6,
        0,
        socket.inet_aton("198.18.255.2"),
        socket.inet_aton("198.18.255.1"),
    )
    tcp = struct.pack(">HHIIBBHHH", 40000, 8000, 1, 1, 5 << 4, 0x18, 65535, 0, 0)
    return destination + source + b"\x08\x00" + ip + tcp + payload


def header(gso_type: int = vnet.GSO_TCPV4, gso_size: int = MTU - 40) -> bytes:
    return vnet.HEADER.pack(vnet.F_NEEDS_CSUM, gso_type, HEADERS, gso_size, CSUM_START, CSUM_OFFSET)


@contextlib.contextmanager
def tap_with_qemus_end() -> Iterator[tuple[str, int]]:
    """A namespace holding a TAP, and the TAP's descriptor as QEMU would hold it (TSO and checksum on)."""
    namespace = f"okfp-{os.getpid()}-{secrets.token_hex(2)}"
    network.create_namespace(namespace)
    try:
        with network.inside(namespace):
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", TAP.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
            fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
            with IPRoute() as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname=TAP)[0], mtu=MTU, state="up")
        try:
            yield namespace, fd
        finally:
            os.close(fd)
    finally:
        network.delete_namespace(namespace)


def guest_reads(fd: int, timeout: float = 5.0) -> bytes:
    """The next frame the guest would get (a virtio-net header first)."""
    readable, _, _ = select.select([fd], [], [], timeout)
    assert readable, "nothing reached the guest"
    return os.read(fd, 70000)


def test_the_port_carries_finished_frames_and_whole_tcp_super_frames_and_drops_bad_headers() -> None:
    async def scenario(namespace: str, qemu: int) -> None:
        port = PacketSocketFramePort(network.open_frame_socket(namespace, TAP), MTU)
        try:
            assert isinstance(port, OffloadPort)
            frames: asyncio.Queue[bytes] = asyncio.Queue()
            offloaded: asyncio.Queue[bytes] = asyncio.Queue()
            port.on_frames(frames.put_nowait)
            port.on_offload(offloaded.put_nowait)

            # the guest sends a finished frame: it arrives as a plain frame, without a header
            finished = tcp_frame(GUEST_MAC, OTHER_MAC, b"finished")
            os.write(qemu, vnet.NONE + finished)
            assert await asyncio.wait_for(frames.get(), 5) == finished

            # a 16 KiB TCP burst, one write of QEMU's: read whole, header and all, and checked
            burst = tcp_frame(GUEST_MAC, OTHER_MAC, secrets.token_bytes(16384))
            os.write(qemu, header() + burst)
            data = await asyncio.wait_for(offloaded.get(), 5)
            assert data[vnet.HEADER_BYTES :] == burst and len(burst) > MTU + 14
            flags, gso_type, _, gso_size, csum_start, csum_offset = vnet.HEADER.unpack_from(data)
            assert (flags, gso_type, gso_size) == (vnet.F_NEEDS_CSUM, vnet.GSO_TCPV4, MTU - 40)
            assert (csum_start, csum_offset) == (CSUM_START, CSUM_OFFSET)

            # a header the kernel takes from the guest but no tunnel end may be handed: segments of
            # 9000 bytes. Dropped and counted; the finished frame written after it arrives, it never does.
            os.write(qemu, header(gso_size=9000) + burst)
            os.write(qemu, vnet.NONE + finished)
            assert await asyncio.wait_for(frames.get(), 5) == finished
            assert offloaded.empty()

            # towards the guest: a finished frame behind an empty header, a super-frame whole
            to_guest = tcp_frame(OTHER_MAC, GUEST_MAC, b"to the guest")
            assert port.send(to_guest)
            assert guest_reads(qemu) == vnet.NONE + to_guest
            big = tcp_frame(OTHER_MAC, GUEST_MAC, secrets.token_bytes(30000))
            assert port.send_offload(header() + big)
            assert guest_reads(qemu) == header() + big

            # a bad header towards the guest is refused before the kernel sees it
            assert not port.send_offload(header(gso_type=0x03) + big)  # UDP fragmentation offload
            assert not port.send_offload(header(gso_size=0) + big)
            assert not port.send(bytes(MTU + 15))
            assert not select.select([qemu], [], [], 0.2)[0]

            counters = port.counters()
            assert counters["from_vm_frames"] == 2 and counters["from_vm_offloaded"] == 1
            assert counters["from_vm_super_frames"] == 1 and counters["dropped_bad_vnet"] == 3
            assert counters["to_vm_frames"] == 1 and counters["to_vm_offloaded"] == 1
            assert counters["dropped_size"] == 1
        finally:
            port.close()

    with tap_with_qemus_end() as (namespace, qemu):
        asyncio.run(scenario(namespace, qemu))
