"""The virtio-net header before an offloaded frame, and the check it passes before any kernel sees it.

An offloaded frame is a 10-byte ``struct virtio_net_hdr`` (the virtio
specification's legacy header, little-endian, as Linux TAPs and packet sockets
read and write it) followed by an Ethernet frame the receiver finishes: a TCP
super-frame of up to 64 KiB to deliver whole or segment, or a frame whose
checksum is left to it. Hypervisors' frame ports yield and take them
(:class:`~omerta_core.interfaces.hypervisor.OffloadPort`), the VPN carries
them. Every header from an untrusted side (a guest, a tunnel's other end) is
checked with :func:`check` before a kernel sees it. Pure; touches nothing.
"""

from __future__ import annotations

import struct

#: ``flags(u8) gso_type(u8) hdr_len(u16) gso_size(u16) csum_start(u16) csum_offset(u16)``.
HEADER = struct.Struct("<BBHHHH")
HEADER_BYTES = HEADER.size
#: A header that asks nothing of the kernel: what precedes a finished frame.
NONE = bytes(HEADER_BYTES)
#: The checksum from ``csum_start`` on is to be filled in at ``csum_start + csum_offset``.
F_NEEDS_CSUM = 0x01
#: The sender vouches for the checksums: a hint, so a frame with only this flag and no GSO type is finished.
F_DATA_VALID = 0x02
GSO_NONE = 0x00
GSO_TCPV4 = 0x01
GSO_TCPV6 = 0x04
#: Added to a TCP GSO type: the segments carry ECN's CWR flag as the super-frame does.
GSO_ECN = 0x80
#: Ethernet header without VLAN tag or FCS.
ETHERNET_HEADER = 14
#: The largest unsegmented frame and the largest segment size accepted (a 1500-byte MTU's frame).
MAX_FRAME = 1514
#: The largest offloaded frame: a 64 KiB TCP super-frame (the kernel's GSO limit) and its Ethernet header.
MAX_OFFLOAD_FRAME = 65536 + ETHERNET_HEADER


class VnetHeaderError(ValueError):
    """An offloaded frame whose virtio-net header a kernel must not be handed."""


def check(data: bytes) -> None:
    """Check a header and its frame; raises only :class:`VnetHeaderError`.

    Allowed: no GSO or TCP segmentation (IPv4, IPv6, with or without ECN); the flags "needs checksum"
    and "data valid"; a checksum position and header length inside the frame; a frame of at most
    :data:`MAX_FRAME` bytes unless it is to be segmented, then a segment size of at most
    :data:`MAX_FRAME` and a frame of at most :data:`MAX_OFFLOAD_FRAME` bytes.
    """
    if len(data) < HEADER_BYTES + ETHERNET_HEADER:
        raise VnetHeaderError("an offloaded frame has a 10-byte virtio-net header and an Ethernet header at least")
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = HEADER.unpack_from(data)
    frame_bytes = len(data) - HEADER_BYTES
    if flags & ~(F_NEEDS_CSUM | F_DATA_VALID):
        raise VnetHeaderError(f"virtio-net flags 0x{flags:02x} not allowed")
    segmented = gso_type & ~GSO_ECN
    if segmented not in (GSO_NONE, GSO_TCPV4, GSO_TCPV6) or gso_type == GSO_ECN:
        raise VnetHeaderError(f"virtio-net GSO type 0x{gso_type:02x} not allowed")
    if segmented == GSO_NONE and frame_bytes > MAX_FRAME:
        raise VnetHeaderError(f"an unsegmented frame has at most {MAX_FRAME} bytes, got {frame_bytes}")
    if segmented != GSO_NONE and not 1 <= gso_size <= MAX_FRAME:
        raise VnetHeaderError(f"segment size {gso_size} out of range")
    if frame_bytes > MAX_OFFLOAD_FRAME:
        raise VnetHeaderError(f"an offloaded frame has at most {MAX_OFFLOAD_FRAME} bytes, got {frame_bytes}")
    if hdr_len > frame_bytes:
        raise VnetHeaderError("virtio-net header length past the frame")
    if flags & F_NEEDS_CSUM and csum_start + csum_offset + 2 > frame_bytes:
        raise VnetHeaderError("checksum position past the frame")
