"""The tunnel's datagrams: one Ethernet frame (or a piece of one) per transport datagram.

Layout (all big-endian), carried on the transport's datagram channel
:data:`FRAMES_CHANNEL` inside the end-to-end encrypted session:

- ``0x01 FRAME``     kind(1) tunnel(4) frame...
- ``0x02 FRAGMENT``  kind(1) tunnel(4) frame-id(2) index(1) count(1) piece...
- ``0x03 KEEPALIVE`` kind(1) tunnel(4) (consumer to provider: "I am here")
- ``0x04 OFFLOAD``   kind(1) tunnel(4) frame-id(2) index(1) count(1) piece... : the pieces join into a
  virtio-net header and a frame the receiving TAP's kernel finishes (a TCP super-frame of up to
  64 KiB to segment, or a partial checksum to fill in)

``tunnel`` is the first four bytes of the VM id, so both sides know it without
a handshake. The one message on :data:`CONTROL_CHANNEL` is a provider's
``vm.rogue`` report (JSON, :func:`encode_rogue`). Pure: encoding, decoding
(only :class:`CodecError`, bounded) and a bounded reassembler. Touches nothing.
docs/vpn.md ("Wire format") specifies both channels.
"""

from __future__ import annotations

import json
import struct
from collections import OrderedDict
from dataclasses import dataclass

from omerta_core.interfaces import vnet

#: The transport datagram channel that carries every tunnel's frames.
FRAMES_CHANNEL = "vpn.frames"
#: The reliable channel for tunnel control messages (``vm.rogue`` reports).
CONTROL_CHANNEL = "vpn.control"

KIND_FRAME = 0x01
KIND_FRAGMENT = 0x02
KIND_KEEPALIVE = 0x03
KIND_OFFLOAD = 0x04
#: Every tunnel datagram kind by name (the golden vectors enumerate these).
KINDS: dict[str, int] = {
    "FRAME": KIND_FRAME,
    "FRAGMENT": KIND_FRAGMENT,
    "KEEPALIVE": KIND_KEEPALIVE,
    "OFFLOAD": KIND_OFFLOAD,
}

#: The ``type`` of a provider's report that a VM sent frames it may not send.
ROGUE_MESSAGE = "vm.rogue"
#: Every message type sent on :data:`CONTROL_CHANNEL`.
CONTROL_MESSAGES = (ROGUE_MESSAGE,)

_HEADER = struct.Struct(">BI")
_FRAGMENT = struct.Struct(">BIHBB")
#: kind(1) tunnel(4): what every tunnel datagram starts with.
HEADER_BYTES = _HEADER.size
FRAGMENT_HEADER_BYTES = _FRAGMENT.size
#: Ethernet header without VLAN tag or FCS.
ETHERNET_HEADER = 14
#: The largest frame the tunnel ever carries (a 1500-byte MTU plus header); bigger ones are dropped.
MAX_FRAME = 1514
#: The sizes of a ``FRAME`` datagram: its header and a frame of 14 to :data:`MAX_FRAME` bytes.
MIN_FRAME_DATAGRAM = HEADER_BYTES + ETHERNET_HEADER
MAX_FRAME_DATAGRAM = HEADER_BYTES + MAX_FRAME
#: A frame is split into at most this many pieces.
MAX_FRAGMENTS = 4
#: Frames being reassembled at once per tunnel; the oldest is dropped beyond that.
MAX_PARTIAL_FRAMES = 64
#: The virtio-net header before an offloaded frame (``struct virtio_net_hdr``, little-endian; the layout
#: and its check are the frame ports' contract, :mod:`omerta_core.interfaces.vnet`).
VNET_HEADER_BYTES = vnet.HEADER_BYTES
#: A header that asks nothing of the kernel: what precedes a finished frame on a TAP with vnet headers.
VNET_NONE = vnet.NONE
VNET_F_NEEDS_CSUM = vnet.F_NEEDS_CSUM
VNET_F_DATA_VALID = vnet.F_DATA_VALID
VNET_GSO_NONE = vnet.GSO_NONE
VNET_GSO_TCPV4 = vnet.GSO_TCPV4
VNET_GSO_TCPV6 = vnet.GSO_TCPV6
VNET_GSO_ECN = vnet.GSO_ECN
#: The largest offloaded frame: a 64 KiB TCP super-frame (the kernel's GSO limit) and its Ethernet header.
MAX_OFFLOAD_FRAME = vnet.MAX_OFFLOAD_FRAME
#: An offloaded frame is split into at most this many pieces (64 of 1,239 bytes hold 64 KiB and more).
MAX_OFFLOAD_PIECES = 64
#: Offloaded frames being reassembled at once per tunnel (at most 8 of 64 pieces held); oldest dropped beyond.
MAX_PARTIAL_OFFLOADS = 8


class CodecError(ValueError):
    """A tunnel datagram that does not parse."""


# Decoded datagrams are slotted, not frozen: one is made per datagram, and a frozen dataclass's
# ``__init__`` costs about twice as much. Treat them as values all the same.
@dataclass(slots=True)
class Frame:
    tunnel: int
    frame: bytes


@dataclass(slots=True)
class Fragment:
    tunnel: int
    frame_id: int
    index: int
    count: int
    piece: bytes


@dataclass(slots=True)
class Keepalive:
    tunnel: int


@dataclass(slots=True)
class OffloadPiece(Fragment):
    """A piece of an offloaded frame: the pieces join into a virtio-net header and a frame."""


@dataclass(slots=True)
class Offloaded:
    """A virtio-net header and the frame it describes, for a TAP that takes vnet headers."""

    data: bytes


Datagram = Frame | Fragment | Keepalive | OffloadPiece


def tunnel_id(vm_id: str) -> int:
    """The 32-bit tunnel number of a VM: the first four bytes of its (hex) id."""
    try:
        return int.from_bytes(bytes.fromhex(vm_id[:8]), "big")
    except ValueError as exc:
        raise CodecError(f"VM ids start with 8 hex digits, got {vm_id[:16]!r}") from exc


def fit_mtu(max_datagram: int) -> int:
    """The largest guest MTU whose every frame fits one datagram of ``max_datagram`` bytes."""
    return max_datagram - HEADER_BYTES - ETHERNET_HEADER


def encode_frame(tunnel: int, frame: bytes) -> bytes:
    return _HEADER.pack(KIND_FRAME, tunnel) + frame


def encode_keepalive(tunnel: int) -> bytes:
    return _HEADER.pack(KIND_KEEPALIVE, tunnel)


def encode_rogue(vm_id: str, reason: str, count: int, action: str) -> bytes:
    """A ``vm.rogue`` report for :data:`CONTROL_CHANNEL`: a JSON object, ASCII, keys in this order."""
    return json.dumps(
        {"type": ROGUE_MESSAGE, "vm_id": vm_id, "reason": reason, "count": count, "action": action}
    ).encode()


def encode_fragments(tunnel: int, frame_id: int, frame: bytes, max_datagram: int) -> list[bytes]:
    """``frame`` in as few equal pieces as fit ``max_datagram``; empty if it fits whole or needs too many."""
    room = max_datagram - FRAGMENT_HEADER_BYTES
    count = -(-len(frame) // room) if room > 0 else 0
    if not 2 <= count <= MAX_FRAGMENTS:
        return []
    size = -(-len(frame) // count)
    return [
        _FRAGMENT.pack(KIND_FRAGMENT, tunnel, frame_id & 0xFFFF, index, count)
        + frame[index * size : (index + 1) * size]
        for index in range(count)
    ]


def encode_offload(tunnel: int, frame_id: int, data: bytes, max_datagram: int) -> list[bytes]:
    """``data`` (vnet header and frame) in as few equal pieces as fit ``max_datagram``; empty if too many."""
    room = max_datagram - FRAGMENT_HEADER_BYTES
    count = -(-len(data) // room) if room > 0 and data else 0
    if not 1 <= count <= MAX_OFFLOAD_PIECES:
        return []
    size = -(-len(data) // count)
    frame_id &= 0xFFFF
    return [
        _FRAGMENT.pack(KIND_OFFLOAD, tunnel, frame_id, index, count) + data[index * size : (index + 1) * size]
        for index in range(count)
    ]


def check_offloaded(data: bytes) -> None:
    """Check a joined offloaded frame before a kernel sees it (:func:`omerta_core.interfaces.vnet.check`).

    Raises only :class:`CodecError`.
    """
    try:
        vnet.check(data)
    except vnet.VnetHeaderError as exc:
        raise CodecError(str(exc)) from None


def decode(datagram: bytes) -> Datagram:
    """Parse one tunnel datagram; raises only :class:`CodecError`."""
    if len(datagram) < HEADER_BYTES:
        raise CodecError(f"tunnel datagrams have at least {HEADER_BYTES} bytes, got {len(datagram)}")
    kind, tunnel = _HEADER.unpack_from(datagram)
    if kind == KIND_FRAME:
        frame = datagram[HEADER_BYTES:]
        if not ETHERNET_HEADER <= len(frame) <= MAX_FRAME:
            raise CodecError(f"a frame has {ETHERNET_HEADER}-{MAX_FRAME} bytes, got {len(frame)}")
        return Frame(tunnel, frame)
    if kind == KIND_KEEPALIVE:
        return Keepalive(tunnel)
    if kind in (KIND_FRAGMENT, KIND_OFFLOAD):
        if len(datagram) <= FRAGMENT_HEADER_BYTES:
            raise CodecError("a fragment without a piece")
        _, _, frame_id, index, count = _FRAGMENT.unpack_from(datagram)
        if kind == KIND_OFFLOAD:
            if not 1 <= count <= MAX_OFFLOAD_PIECES or index >= count:
                raise CodecError(f"offload piece {index} of {count}: out of range")
            return OffloadPiece(tunnel, frame_id, index, count, datagram[FRAGMENT_HEADER_BYTES:])
        if not 2 <= count <= MAX_FRAGMENTS or index >= count:
            raise CodecError(f"fragment {index} of {count}: out of range")
        return Fragment(tunnel, frame_id, index, count, datagram[FRAGMENT_HEADER_BYTES:])
    raise CodecError(f"unknown tunnel datagram kind 0x{kind:02x}")


class Reassembler:
    """Joins fragments into frames, holding at most ``max_partial`` partial ones of at most ``max_frame`` bytes.

    The defaults are those of :data:`KIND_FRAGMENT`; offloaded frames use :data:`MAX_PARTIAL_OFFLOADS`
    and their header plus :data:`MAX_OFFLOAD_FRAME`.
    """

    def __init__(self, max_partial: int = MAX_PARTIAL_FRAMES, max_frame: int = MAX_FRAME) -> None:
        self._partial: OrderedDict[int, list[bytes | None]] = OrderedDict()
        self._max_partial = max_partial
        self._max_frame = max_frame
        self.dropped = 0

    def add(self, fragment: Fragment) -> bytes | None:
        """The whole frame once its last piece arrives, else ``None``."""
        pieces = self._partial.get(fragment.frame_id)
        if pieces is None or len(pieces) != fragment.count:
            if pieces is not None:
                self.dropped += 1
            pieces = [None] * fragment.count
            self._partial[fragment.frame_id] = pieces
            while len(self._partial) > self._max_partial:
                self._partial.popitem(last=False)
                self.dropped += 1
        pieces[fragment.index] = fragment.piece
        if None in pieces:
            return None
        del self._partial[fragment.frame_id]
        frame = b"".join(piece for piece in pieces if piece is not None)
        if len(frame) > self._max_frame:
            self.dropped += 1
            return None
        return frame
