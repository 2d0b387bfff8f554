"""Receive coalescing (GRO) for a TAP with vnet headers: a run of UDP frames of one flow as one write.

A TAP takes one frame per ``write()``, and each costs a system call and a pass
through the kernel's IP stack (about 3 µs here). Frames already in hand
together (one batch of tunnel datagrams) that the kernel can rebuild exactly
from one UDP super-frame (``VIRTIO_NET_HDR_GSO_UDP_L4``, Linux 4.18 and later)
are written as one: the gateway's kernel delivers it whole to a socket that
asked for ``UDP_GRO``, and segments it back into the very same frames anywhere
else. Nothing is held back for later: only what :func:`plan` is given is joined.

A frame joins the frame before it only when the kernel's segmentation gives it
back byte for byte: same length (the segment size), IPv4 without options and
not a fragment, or IPv6 with UDP as its first next header; every header field
the same but the IPv4 identification, which counts up by one; both checksums
(IPv4 header, UDP) verified and the UDP one present. Anything else (IP
options, fragments, other flows, a bad or missing checksum, TCP, ARP) is
written alone, as it came. The checks run over the whole batch at once
(numpy), so the per-frame cost stays below the write it saves.

Pure: :func:`plan` turns frames into the buffers of each ``writev``; touches nothing.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from omerta_core.interfaces import vnet

#: ``VIRTIO_NET_HDR_GSO_UDP_L4``: segment into UDP datagrams of ``gso_size`` payload bytes.
GSO_UDP_L4 = 0x05
#: The most frames in one super-frame (the kernel's ``UDP_MAX_SEGMENTS`` is 64 on older kernels).
MAX_SEGMENTS = 64
#: An IP packet's length field: the largest super-frame's IP packet.
MAX_IP_PACKET = 65535
ETHERNET = 14
IPV4_HEADER = 20
IPV6_HEADER = 40
UDP_HEADER = 8
UDP = 17
#: Ethernet, IP and UDP headers: where the payload starts.
IPV4_HEADERS = ETHERNET + IPV4_HEADER + UDP_HEADER
IPV6_HEADERS = ETHERNET + IPV6_HEADER + UDP_HEADER
#: Header bytes that every frame of a run has alike (IPv4: all but identification and header checksum).
_IPV4_ALIKE = np.r_[0:18, 20:24, 26:40]
_IPV6_ALIKE = np.r_[0:IPV6_HEADERS - 2]
_VNET = struct.Struct("<BBHHHH")

#: One ``writev``'s buffers and the frames it carries.
Write = tuple[list[bytes | memoryview], Sequence[bytes]]


def plan(frames: Sequence[bytes]) -> list[Write]:
    """The writes that hand ``frames`` to a vnet-header TAP in order: runs joined, the rest one by one.

    Each write is a virtio-net header and either a frame as given or one super-frame, with the frames it
    carries (to write one by one should the kernel refuse the super-frame).
    """
    writes: list[Write] = []
    count = len(frames)
    start = 0
    while start < count:
        size = len(frames[start])
        end = start + 1
        while end < count and len(frames[end]) == size:
            end += 1
        if end - start >= 2 and size > IPV4_HEADERS:
            writes += _coalesce(frames[start:end], size)
        else:
            writes += [([vnet.NONE, frame], (frame,)) for frame in frames[start:end]]
        start = end
    return writes


def _coalesce(frames: Sequence[bytes], size: int) -> list[Write]:
    """The writes for a run of frames of ``size`` bytes each."""
    rows = np.frombuffer(b"".join(frames), dtype=np.uint8).reshape(len(frames), size)
    ethertype = int(rows[0, 12]) << 8 | int(rows[0, 13])
    if ethertype == 0x0800:
        headers, joins = IPV4_HEADERS, _ipv4_joins(rows, size)
    elif ethertype == 0x86DD and size > IPV6_HEADERS:
        headers, joins = IPV6_HEADERS, _ipv6_joins(rows, size)
    else:
        return [([vnet.NONE, frame], (frame,)) for frame in frames]
    most = min(MAX_SEGMENTS, (MAX_IP_PACKET - (headers - ETHERNET - UDP_HEADER) - UDP_HEADER) // (size - headers))
    writes: list[Write] = []
    run = 0
    for index, joined in enumerate(joins.tolist()[1:], 1):
        if not joined or index - run >= most:
            writes.append(_write(frames[run:index], headers))
            run = index
    writes.append(_write(frames[run:], headers))
    return writes


def _ipv4_joins(rows: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.bool_]:
    """Whether each frame may join the one before it (the first: never)."""
    words = rows.astype(np.int64)
    high, low = words[:, 0::2], words[:, 1::2]
    ip_sum = (high[:, 7:17].sum(axis=1) << 8) + low[:, 7:17].sum(axis=1)
    udp_length = size - ETHERNET - IPV4_HEADER
    pseudo = (high[:, 13:17].sum(axis=1) << 8) + low[:, 13:17].sum(axis=1) + UDP + udp_length
    udp_sum = (high[:, 17:].sum(axis=1) << 8) + low[:, 17:].sum(axis=1) + pseudo
    fine = (
        (rows[:, 14] == 0x45)
        & (rows[:, 23] == UDP)
        & ((rows[:, 20] & 0xBF) == 0)  # only "don't fragment" among the flags, offset 0: not a fragment
        & (rows[:, 21] == 0)
        & ((words[:, 16] << 8 | words[:, 17]) == size - ETHERNET)
        & ((words[:, 38] << 8 | words[:, 39]) == udp_length)
        & ((rows[:, 40] | rows[:, 41]) != 0)  # a UDP checksum is present
        & (ip_sum % 0xFFFF == 0)
        & (udp_sum % 0xFFFF == 0)
    )
    identification = words[:, 18] << 8 | words[:, 19]
    follows = (identification[1:] - identification[:-1]) & 0xFFFF == 1
    alike = (rows[1:, _IPV4_ALIKE] == rows[:-1, _IPV4_ALIKE]).all(axis=1)
    return np.concatenate(([False], fine[1:] & fine[:-1] & follows & alike))


def _ipv6_joins(rows: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.bool_]:
    """Whether each frame may join the one before it (the first: never)."""
    words = rows.astype(np.int64)
    high, low = words[:, 0::2], words[:, 1::2]
    udp_length = size - ETHERNET - IPV6_HEADER
    pseudo = (high[:, 11:27].sum(axis=1) << 8) + low[:, 11:27].sum(axis=1) + UDP + udp_length
    udp_sum = (high[:, 27:].sum(axis=1) << 8) + low[:, 27:].sum(axis=1) + pseudo
    fine = (
        ((rows[:, 14] >> 4) == 6)
        & (rows[:, 20] == UDP)
        & ((words[:, 18] << 8 | words[:, 19]) == udp_length)
        & ((words[:, 58] << 8 | words[:, 59]) == udp_length)
        & ((rows[:, 60] | rows[:, 61]) != 0)
        & (udp_sum % 0xFFFF == 0)
    )
    alike = (rows[1:, _IPV6_ALIKE] == rows[:-1, _IPV6_ALIKE]).all(axis=1)
    return np.concatenate(([False], fine[1:] & fine[:-1] & alike))


def _write(frames: Sequence[bytes], headers: int) -> Write:
    """One frame as it is, or a run as a super-frame: the first frame's headers with lengths and
    checksums made the super-frame's, then every frame's payload."""
    first = frames[0]
    if len(frames) == 1:
        return [vnet.NONE, first], frames
    segment = len(first) - headers
    udp_length = UDP_HEADER + segment * len(frames)
    head = bytearray(first[:headers])
    udp = headers - UDP_HEADER
    if headers == IPV4_HEADERS:
        head[16:18] = (IPV4_HEADER + udp_length).to_bytes(2, "big")
        head[24:26] = bytes(2)
        head[24:26] = (~_sum(head[ETHERNET:udp]) & 0xFFFF).to_bytes(2, "big")
        addresses = head[26:34]
    else:
        head[18:20] = udp_length.to_bytes(2, "big")
        addresses = head[22:54]
    head[udp + 4 : udp + 6] = udp_length.to_bytes(2, "big")
    # a partial checksum: the pseudo header's sum, which the kernel completes for every segment
    head[udp + 6 : udp + 8] = _sum(addresses, UDP + udp_length).to_bytes(2, "big")
    header = _VNET.pack(vnet.F_NEEDS_CSUM, GSO_UDP_L4, headers, segment, udp, 6)
    buffers: list[bytes | memoryview] = [header, bytes(head)]
    buffers += [memoryview(frame)[headers:] for frame in frames]
    return buffers, frames


def _sum(data: bytes | bytearray, extra: int = 0) -> int:
    """The ones' complement sum of ``data``'s 16-bit words and ``extra``, folded to 16 bits."""
    total = extra + sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total
