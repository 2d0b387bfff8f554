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
import sys
from collections.abc import Callable, Sequence
from itertools import groupby, pairwise

import numpy as np
import numpy.typing as npt

from omerta_core.interfaces import vnet

#: ``VIRTIO_NET_HDR_GSO_UDP_L4``: segment into UDP datagrams of ``gso_size`` payload bytes.
GSO_UDP_L4 = 0x05
#: The most frames in one super-frame (the kernel's ``UDP_MAX_SEGMENTS`` is 64 on older kernels).
MAX_SEGMENTS = 64
#: Frames of one size in a row that are worth the checks: they cost a fixed ~50-100 µs per batch here
#: (numpy calls), about what 32-48 writes of a frame each cost; fewer are written one by one.
MIN_GROUP = 48
#: The smallest frame looked at (a minimal Ethernet frame's 60 bytes, and room for IPv6 and UDP headers).
MIN_SIZE = 64
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
_VNET = struct.Struct("<BBHHHH")
_WORD = struct.Struct("!H")
#: The IPv4 total length and header checksum (the identification and four more bytes between them kept).
_IPV4_FIELDS = struct.Struct("!H6xH")
_WORDS = struct.Struct("!HH")
#: The header bytes every frame of a run has alike, as masks: IPv4 all but the identification and
#: checksums, IPv6 all but the UDP checksum.
#: (In 64-bit words over the first 48 or 64 bytes, which a frame of a run always has.)
_alike = np.zeros(64, dtype=np.uint8)
_alike[:IPV4_HEADERS] = 0xFF
_alike[[18, 19, 24, 25, 40, 41]] = 0
_IPV4_ALIKE = _alike[:48].view(np.uint64).copy()
_alike[:IPV6_HEADERS] = 0xFF
_alike[[60, 61]] = 0
_IPV6_ALIKE = _alike.view(np.uint64).copy()
#: A 16-bit word's sum in the machine's byte order is the big-endian one times this (mod 0xFFFF).
_NATIVE = 256 if sys.byteorder == "little" else 1

#: One ``writev``'s buffers and the frames it carries (as given to :func:`plan`: each behind ``offset`` bytes).
Write = tuple[list[bytes | bytearray | memoryview], Sequence[bytes]]


def plan(
    frames: Sequence[bytes], min_group: int = MIN_GROUP, offset: int = 0, lengths: set[int] | None = None
) -> list[Write]:
    """The writes that hand ``frames`` to a vnet-header TAP in order: runs joined, the rest one by one.

    Each of ``frames`` is a frame behind ``offset`` bytes (a tunnel datagram's header: the frames are
    not cut out of their datagrams, which would copy each once more); ``lengths``, if given, is the set of
    their lengths (the caller's size check has it). Only where at least ``min_group`` frames of one size come
    in a row are runs looked for.

    Each write is a virtio-net header and either a frame or one super-frame, with the items of ``frames``
    it carries (to write one by one should the kernel refuse the super-frame).
    """
    if lengths is None:
        lengths = set(map(len, frames))
    if len(frames) >= max(2, min_group) and len(lengths) == 1:
        size = next(iter(lengths)) - offset
        if size >= MIN_SIZE:
            return _coalesce(frames, size, offset)  # the usual batch: frames of one size only
    writes: list[Write] = []
    for length, group in groupby(frames, len):  # runs of one size, found in C rather than frame by frame
        run = list(group)
        if len(run) >= max(2, min_group) and length - offset >= MIN_SIZE:
            writes += _coalesce(run, length - offset, offset)
        else:
            writes += _alone(run, offset)
    return writes


def _alone(frames: Sequence[bytes], offset: int) -> list[Write]:
    """A write per frame, as it came."""
    if offset:
        return [([vnet.NONE, frame[offset:]], (frame,)) for frame in frames]
    return [([vnet.NONE, frame], (frame,)) for frame in frames]


def _coalesce(frames: Sequence[bytes], size: int, offset: int) -> list[Write]:
    """The writes for a run of frames of ``size`` bytes each (behind ``offset`` bytes).

    The checks that differ from frame to frame (checksums, identification, sameness with the frame
    before) run over all of them at once; the rest (:func:`_ipv4_fine`) only on the first frame of each
    run, since every frame that joins it has those bytes alike.
    """
    fine: Callable[[bytes, int], bool]
    ether = frames[0][offset + 12 : offset + 14]
    if ether == b"\x08\x00":
        rows = _rows(frames, size, offset)
        headers, breaks, fine = IPV4_HEADERS, _ipv4_breaks(rows, size), _ipv4_fine
    elif ether == b"\x86\xdd":
        rows = _rows(frames, size, offset)
        headers, breaks, fine = IPV6_HEADERS, _ipv6_breaks(rows, size), _ipv6_fine
    else:
        return _alone(frames, offset)
    most = min(MAX_SEGMENTS, (MAX_IP_PACKET - (headers - ETHERNET - UDP_HEADER) - UDP_HEADER) // (size - headers))
    # where a frame may not join the one before it, a run ends: the runs' bounds, found over the batch at once
    bounds = [0, *(breaks.nonzero()[0] + 1).tolist(), len(frames)]
    writes: list[Write] = []
    segment = size - headers
    header = _VNET.pack(vnet.F_NEEDS_CSUM, GSO_UDP_L4, headers, segment, headers - UDP_HEADER, 6)
    payloads = None  # every frame's payload, one after the other: copied from the rows at once, if needed
    for start, end in pairwise(bounds):
        # the bytes _fine looks at are alike in every frame of a run: its first frame speaks for all
        if end - start > 1 and fine(frames[start][offset : offset + IPV6_HEADERS], size):
            if payloads is None:
                payloads = memoryview(rows[:, headers:size].tobytes())
            for at in range(start, end, most):
                stop = min(at + most, end)
                if stop - at == 1:
                    writes += _alone(frames[at:stop], offset)
                    continue
                head = _head(frames[at], offset, headers, segment, stop - at)
                writes.append(([header, head, payloads[at * segment : stop * segment]], frames[at:stop]))
        else:
            writes += _alone(frames[start:end], offset)
    return writes


def _rows(frames: Sequence[bytes], size: int, offset: int) -> npt.NDArray[np.uint8]:
    """One row per frame (its bytes after ``offset``), padded with zeros to a multiple of eight bytes (an
    odd-sized frame's last byte then counts as a word's high byte, as the checksum wants).

    One copy (a join) of the whole batch, laid out so that every frame starts at a multiple of eight
    bytes: numpy sums aligned words about 1.6 times as fast as unaligned ones.
    """
    padding = -size % 8
    gap = -(offset + size) % 8  # zeros between two items: each frame's padding, and the next frame aligned
    if gap < padding:
        gap += 8
    stride = offset + size + gap
    lead = -(gap + offset) % 8
    joined = bytes(gap).join([bytes(lead), *frames, bytes(offset)])
    start = lead + gap + offset
    return np.frombuffer(joined, dtype=np.uint8, offset=start).reshape(len(frames), stride)[:, : size + padding]


def _word_weights(before: int, ip_header: bool, udp_checksum: int) -> npt.NDArray[np.float64]:
    """What :func:`_breaks` sums over a frame's first 32 16-bit words, one row per figure: the words before
    the pseudo header's addresses, negated; the IPv4 header's words; the UDP checksum."""
    weights = np.zeros((3, 32), dtype=np.float64)
    weights[0, : before // 2] = -1
    if ip_header:
        weights[1, ETHERNET // 2 : (ETHERNET + IPV4_HEADER) // 2] = 1
    weights[2, udp_checksum // 2] = 1
    return weights


def _tiled(alike: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The mask of bytes alike in a run, one row per frame (a contiguous array: numpy's fast case)."""
    return np.tile(np.pad(alike, (0, 8 - len(alike))), (_TILED_ROWS, 1))


#: Frames per batch the tiled masks cover; a larger batch tiles its own.
_TILED_ROWS = 512
_IPV4_WEIGHTS = _word_weights(26, ip_header=True, udp_checksum=40)
_IPV6_WEIGHTS = _word_weights(22, ip_header=False, udp_checksum=60)
_IPV4_TILED = _tiled(_IPV4_ALIKE)
_IPV6_TILED = _tiled(_IPV6_ALIKE)


def _breaks(
    rows: npt.NDArray[np.uint8],
    tiled: npt.NDArray[np.uint64],
    weights: npt.NDArray[np.float64],
    extra: int,
    *,
    counting: bool,
) -> npt.NDArray[np.float64]:
    """Non-zero where a frame after the first may not join the one before it, as far as the two differ: every
    header byte alike but the identification and the checksums, the identification counting up by one
    (``counting``, IPv4), both frames' checksums right and their UDP checksum present.

    Checksums are sums of 16-bit words in the machine's byte order, modulo 0xFFFF: a ones' complement sum
    is zero in either byte order alike (RFC 1071). The bulk is summed 32 bits at a time (a 32-bit word
    is the sum of its halves modulo 0xFFFF); one product over the first 32 words (``weights``, in floating
    point: BLAS, and exact, as every figure stays below 2**53) takes the words before the pseudo header's
    addresses back out (``extra``: its protocol and length) and gives the IPv4 header's sum and the UDP
    checksum. Every step works on contiguous arrays, one row per figure
    (numpy runs a loop per row of an array otherwise: 140 loops of 8 words cost what 30 calls do).
    """
    count = len(rows)
    head = np.ascontiguousarray(rows[:, :64])
    if count > len(tiled):
        tiled = np.tile(tiled[0], (count, 1))
    masked = head.view(np.uint64) & tiled[:count]
    differ = (masked[1:] != masked[:-1]).view(np.uint64)[:, 0]  # eight booleans a row: non-zero if any is
    figures = weights @ head.view(np.uint16).astype(np.float64).T
    whole = np.einsum("ij->i", rows.view(np.uint32), dtype=np.int64)
    whole += extra
    figures[0] += whole
    sums = np.fmod(figures[:2], 0xFFFF)  # as the remainder: neither figure is negative (the row sums hold
    # the words taken back out)
    bad = sums[0] + sums[1]  # not negative: zero only when both are
    bad += figures[2] == 0
    breaks = bad[1:] + bad[:-1]
    breaks += differ
    if counting:
        identification = head[:, 18:20].view(">u2")[:, 0]
        breaks += identification[1:] - identification[:-1] != 1  # in 16 bits: 65535 to 0 follows too
    return breaks


def _ipv4_breaks(rows: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.float64]:
    """Non-zero where a frame after the first may not join the one before it, as far as the two differ."""
    extra = (UDP + size - ETHERNET - IPV4_HEADER) * _NATIVE
    return _breaks(rows, _IPV4_TILED, _IPV4_WEIGHTS, extra, counting=True)


def _ipv4_fine(frame: bytes, size: int) -> bool:
    """IPv4 (by its Ethernet type too: the batch's first frame chose the checks) without options, not a
    fragment (no flag but "don't fragment", offset 0), UDP, lengths right."""
    return (
        frame[12:14] == b"\x08\x00"
        and frame[14] == 0x45
        and frame[20] & 0xBF == 0
        and frame[21] == 0
        and frame[23] == UDP
        and int.from_bytes(frame[16:18], "big") == size - ETHERNET
        and int.from_bytes(frame[38:40], "big") == size - ETHERNET - IPV4_HEADER
    )


def _ipv6_breaks(rows: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.float64]:
    """Non-zero where a frame after the first may not join the one before it, as far as the two differ."""
    extra = (UDP + size - ETHERNET - IPV6_HEADER) * _NATIVE
    return _breaks(rows, _IPV6_TILED, _IPV6_WEIGHTS, extra, counting=False)


def _ipv6_fine(frame: bytes, size: int) -> bool:
    """IPv6 (by its Ethernet type too) whose first next header is UDP, lengths right."""
    udp_length = size - ETHERNET - IPV6_HEADER
    return (
        frame[12:14] == b"\x86\xdd"
        and frame[14] >> 4 == 6
        and frame[20] == UDP
        and int.from_bytes(frame[18:20], "big") == udp_length
        and int.from_bytes(frame[58:60], "big") == udp_length
    )


def _head(first: bytes, offset: int, headers: int, segment: int, count: int) -> bytearray:
    """The headers of a super-frame of ``count`` segments: ``first``'s (behind ``offset``), with lengths and
    checksums made the super-frame's."""
    head = bytearray(first[offset : offset + headers])
    udp_length = UDP_HEADER + segment * count
    # a partial checksum: the pseudo header's sum, which the kernel completes for every segment
    if headers == IPV4_HEADERS:
        ip_length = IPV4_HEADER + udp_length
        # the header's checksum (verified) updated for the new total length alone (RFC 1624, eqn. 3)
        old_length, old_checksum = _IPV4_FIELDS.unpack_from(head, 16)
        checksum = ~_fold((~old_checksum & 0xFFFF) + (~old_length & 0xFFFF) + ip_length) & 0xFFFF
        partial = _sum(head[26:34], UDP + udp_length)
        _WORD.pack_into(head, 16, ip_length)  # (a pad byte of a struct would write zeros: two words)
        _WORD.pack_into(head, 24, checksum)
    else:
        partial = _sum(head[22:54], UDP + udp_length)
        _WORD.pack_into(head, 18, udp_length)
    _WORDS.pack_into(head, headers - UDP_HEADER + 4, udp_length, partial)
    return head


def _fold(total: int) -> int:
    """``total`` (not negative) as a 16-bit ones' complement sum: the same residue modulo 0xFFFF, zero only
    when ``total`` is (a 16-bit word is worth the same modulo 0xFFFF in every position)."""
    return total % 0xFFFF or (0xFFFF if total else 0)


def _sum(data: bytes | bytearray, extra: int = 0) -> int:
    """The ones' complement sum of ``data``'s 16-bit words (an even number of bytes) and ``extra``, folded."""
    return _fold(int.from_bytes(data, "big") + extra)
