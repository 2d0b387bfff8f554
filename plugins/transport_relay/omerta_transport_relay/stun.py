"""STUN Binding requests and responses (RFC 8489): encode, decode, and a retransmitting client transaction.

Only what endpoint discovery needs: the Binding method, XOR-MAPPED-ADDRESS (and
the legacy MAPPED-ADDRESS when reading), SOFTWARE and FINGERPRINT. Any STUN
server (coturn, say) answers the requests; an Omerta relay answers them too.
Pure functions and a sans-IO state machine; touches nothing.
"""

from __future__ import annotations

import ipaddress
import struct
import zlib
from dataclasses import dataclass, field

from omerta_core.errors import OmertaError
from omerta_core.interfaces.common import Endpoint
from omerta_core.randomness import RandomSource, system_random

MAGIC_COOKIE = 0x2112A442
HEADER = struct.Struct("!HHI12s")
HEADER_LEN = HEADER.size
TRANSACTION_ID_LEN = 12

BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111

ATTR_MAPPED_ADDRESS = 0x0001
ATTR_XOR_MAPPED_ADDRESS = 0x0020
ATTR_SOFTWARE = 0x8022
ATTR_FINGERPRINT = 0x8028
#: RFC 8489 §14.7: the CRC-32 of the message is XORed with this ("STUN").
FINGERPRINT_XOR = 0x5354554E

FAMILY_IPV4 = 0x01
FAMILY_IPV6 = 0x02

#: RFC 8489 §6.2.1: initial retransmission timeout for UDP.
INITIAL_RTO_S = 0.5
#: RFC 8489 suggests 7 transmissions (Rc); a node learning its endpoints needs an answer sooner, so fewer.
MAX_TRANSMISSIONS = 5
#: RFC 8489 §6.2.1: after the last transmission wait Rm (16) times the initial RTO before giving up.
FINAL_WAIT_FACTOR = 16

SOFTWARE = b"omerta-relay"


class StunError(OmertaError, ValueError):
    """A datagram that is not a well-formed STUN message of a kind we handle."""


@dataclass(frozen=True)
class StunMessage:
    """A decoded STUN message: its type, transaction id and raw attributes."""

    type: int
    transaction_id: bytes
    attributes: dict[int, bytes] = field(default_factory=dict)

    @property
    def mapped_endpoint(self) -> Endpoint:
        """The reflexive endpoint a Binding success response reports."""
        if ATTR_XOR_MAPPED_ADDRESS in self.attributes:
            return _decode_address(self.attributes[ATTR_XOR_MAPPED_ADDRESS], self.transaction_id, xor=True)
        if ATTR_MAPPED_ADDRESS in self.attributes:
            return _decode_address(self.attributes[ATTR_MAPPED_ADDRESS], self.transaction_id, xor=False)
        raise StunError("binding response without a mapped address")


def looks_like_stun(data: bytes) -> bool:
    """Cheap test: two leading zero bits and the magic cookie (RFC 8489 §5)."""
    return len(data) >= HEADER_LEN and data[0] & 0xC0 == 0 and data[4:8] == MAGIC_COOKIE.to_bytes(4, "big")


def new_transaction_id(rng: RandomSource | None = None) -> bytes:
    return (rng or system_random()).randbytes(TRANSACTION_ID_LEN)


def encode_binding_request(transaction_id: bytes) -> bytes:
    return _encode(BINDING_REQUEST, transaction_id, [(ATTR_SOFTWARE, SOFTWARE)])


def encode_binding_success(transaction_id: bytes, mapped: Endpoint) -> bytes:
    """The answer a reflector gives: XOR-MAPPED-ADDRESS of the request's source."""
    value = _encode_address(mapped, transaction_id)
    return _encode(BINDING_SUCCESS, transaction_id, [(ATTR_XOR_MAPPED_ADDRESS, value), (ATTR_SOFTWARE, SOFTWARE)])


def decode(data: bytes) -> StunMessage:
    """Decode one STUN message; checks the header, lengths, padding and FINGERPRINT if present."""
    if not looks_like_stun(data):
        raise StunError("not a STUN message")
    kind, length, _cookie, transaction_id = HEADER.unpack_from(data)
    if length % 4 or HEADER_LEN + length != len(data):
        raise StunError("STUN length does not match the datagram")
    attributes: dict[int, bytes] = {}
    offset = HEADER_LEN
    while offset < len(data):
        if offset + 4 > len(data):
            raise StunError("truncated STUN attribute header")
        attr_type, attr_len = struct.unpack_from("!HH", data, offset)
        start = offset + 4
        end = start + attr_len
        if end > len(data):
            raise StunError("truncated STUN attribute")
        if attr_type == ATTR_FINGERPRINT:
            expected = (zlib.crc32(data[:offset]) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
            if attr_len != 4 or struct.unpack_from("!I", data, start)[0] != expected:
                raise StunError("STUN fingerprint mismatch")
        attributes.setdefault(attr_type, data[start:end])
        offset = start + attr_len + (-attr_len % 4)
    return StunMessage(kind, transaction_id, attributes)


def _encode(kind: int, transaction_id: bytes, attributes: list[tuple[int, bytes]]) -> bytes:
    if len(transaction_id) != TRANSACTION_ID_LEN:
        raise StunError("a STUN transaction id has 12 bytes")
    body = b"".join(
        struct.pack("!HH", attr_type, len(value)) + value + b"\x00" * (-len(value) % 4)
        for attr_type, value in attributes
    )
    with_fingerprint_len = len(body) + 8
    head = HEADER.pack(kind, with_fingerprint_len, MAGIC_COOKIE, transaction_id)
    crc = (zlib.crc32(head + body) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
    return head + body + struct.pack("!HHI", ATTR_FINGERPRINT, 4, crc)


def _xor_key(transaction_id: bytes) -> bytes:
    return MAGIC_COOKIE.to_bytes(4, "big") + transaction_id


def _encode_address(endpoint: Endpoint, transaction_id: bytes) -> bytes:
    address = ipaddress.ip_address(endpoint.host)
    family = FAMILY_IPV4 if address.version == 4 else FAMILY_IPV6
    raw = address.packed
    key = _xor_key(transaction_id)[: len(raw)]
    xored = bytes(a ^ b for a, b in zip(raw, key, strict=True))
    return struct.pack("!BBH", 0, family, endpoint.port ^ (MAGIC_COOKIE >> 16)) + xored


def _decode_address(value: bytes, transaction_id: bytes, *, xor: bool) -> Endpoint:
    if len(value) < 4:
        raise StunError("truncated address attribute")
    _, family, port = struct.unpack_from("!BBH", value)
    raw = value[4:]
    if (family, len(raw)) not in ((FAMILY_IPV4, 4), (FAMILY_IPV6, 16)):
        raise StunError("bad address family or length")
    if xor:
        port ^= MAGIC_COOKIE >> 16
        key = _xor_key(transaction_id)[: len(raw)]
        raw = bytes(a ^ b for a, b in zip(raw, key, strict=True))
    host = ipaddress.IPv4Address(raw) if family == FAMILY_IPV4 else ipaddress.IPv6Address(raw)
    return Endpoint(str(host), port)


class BindingTransaction:
    """One Binding request to one server, retransmitted with doubling timeouts (RFC 8489 §6.2.1).

    Feed it the clock with :meth:`poll` (returns a datagram to send, if one is
    due) and candidate answers with :meth:`receive`. ``result`` becomes the
    mapped endpoint on success; ``failed`` becomes true when every
    transmission went unanswered.
    """

    def __init__(self, server: Endpoint, now: float, rng: RandomSource | None = None) -> None:
        self.server = server
        self.transaction_id = new_transaction_id(rng)
        self.request = encode_binding_request(self.transaction_id)
        self.result: Endpoint | None = None
        self.failed = False
        self.transmissions = 0
        self._next_send = now
        self._rto = INITIAL_RTO_S
        self._give_up_at: float | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.failed

    def poll(self, now: float) -> bytes | None:
        """The request, when a (re)transmission is due; ``None`` otherwise."""
        if self.done:
            return None
        if self._give_up_at is not None:
            if now >= self._give_up_at:
                self.failed = True
            return None
        if now < self._next_send:
            return None
        self.transmissions += 1
        if self.transmissions >= MAX_TRANSMISSIONS:
            self._give_up_at = now + INITIAL_RTO_S * FINAL_WAIT_FACTOR / 4
        else:
            self._next_send = now + self._rto
            self._rto *= 2
        return self.request

    def next_deadline(self) -> float | None:
        if self.done:
            return None
        return self._give_up_at if self._give_up_at is not None else self._next_send

    def receive(self, data: bytes, source: Endpoint) -> bool:
        """Consume ``data`` if it answers this transaction; return whether it did."""
        if self.done or source != self.server:
            return False
        try:
            message = decode(data)
        except StunError:
            return False
        if message.transaction_id != self.transaction_id:
            return False
        if message.type == BINDING_SUCCESS:
            try:
                self.result = message.mapped_endpoint
            except StunError:
                self.failed = True
        elif message.type == BINDING_ERROR:
            self.failed = True
        else:
            return False
        return True
