"""The relay protocol's datagrams: encoding and decoding only.

Relay datagrams travel on the UDP transport's own socket next to its session
packets, so their first byte is in 0xA0-0xAF (the transport owns 0x10-0x1f;
STUN starts with two zero bits and carries a magic cookie). Peer ids travel as
their 32-byte Ed25519 public keys. Integers are big-endian. Every malformed
input raises :class:`RelayWireError`. Pure; touches nothing.

========== ===== ==========================================================
message    byte  body
========== ===== ==========================================================
ALLOCATE   0xA1  txid(12) nonce(16) client key(32) signature(64)
CHALLENGE  0xA2  txid(12) nonce(16)
ALLOCATED  0xA3  txid(12) lifetime s(2) other port(2) observed endpoint
REFUSED    0xA4  txid(12) reason(1)
SEND       0xA5  destination key(32) session packet
DATA       0xA6  source key(32) session packet
NO_ROUTE   0xA7  destination key(32)
PROBE_ME   0xA8  txid(12)
PROBED     0xA9  txid(12)
========== ===== ==========================================================

An endpoint is family(1: 4 or 6), the address (4 or 16 bytes) and a port(2).
The ALLOCATE signature covers ``SIGNING_DOMAIN``, the relay's key, txid, nonce
and the client key: it proves the client holds its peer id's key, and the nonce
(bound by the relay to the client's source endpoint) stops replays from
elsewhere.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from dataclasses import dataclass

from omerta_core.errors import OmertaError
from omerta_core.interfaces.common import Endpoint, PeerId

TXID_LEN = 12
NONCE_LEN = 16
KEY_LEN = 32
SIGNATURE_LEN = 64
SIGNING_DOMAIN = b"omerta-relay-allocate-v1"
#: First bytes of relay datagrams.
FIRST_BYTE_RANGE = range(0xA0, 0xB0)


class Kind(enum.IntEnum):
    ALLOCATE = 0xA1
    CHALLENGE = 0xA2
    ALLOCATED = 0xA3
    REFUSED = 0xA4
    SEND = 0xA5
    DATA = 0xA6
    NO_ROUTE = 0xA7
    PROBE_ME = 0xA8
    PROBED = 0xA9


class RefusalReason(enum.IntEnum):
    FULL = 1
    BAD_SIGNATURE = 2
    STALE_NONCE = 3
    TOO_MANY_FROM_HOST = 4


class RelayWireError(OmertaError, ValueError):
    """A datagram that is not a well-formed relay message."""


@dataclass(frozen=True)
class Allocate:
    txid: bytes
    nonce: bytes
    client: PeerId
    signature: bytes

    def signed_bytes(self, relay: PeerId) -> bytes:
        return allocation_statement(relay, self.txid, self.nonce, self.client)


@dataclass(frozen=True)
class Challenge:
    txid: bytes
    nonce: bytes


@dataclass(frozen=True)
class Allocated:
    txid: bytes
    lifetime_s: int
    #: The relay's second port (same address): a second observer for classification; 0 if none.
    other_port: int
    observed: Endpoint


@dataclass(frozen=True)
class Refused:
    txid: bytes
    reason: RefusalReason


@dataclass(frozen=True)
class Send:
    destination: PeerId
    packet: bytes


@dataclass(frozen=True)
class Data:
    source: PeerId
    packet: bytes


@dataclass(frozen=True)
class NoRoute:
    destination: PeerId


@dataclass(frozen=True)
class ProbeMe:
    """Ask the relay to send PROBED from its second port: does the NAT filter by port?"""

    txid: bytes


@dataclass(frozen=True)
class Probed:
    txid: bytes


Message = Allocate | Challenge | Allocated | Refused | Send | Data | NoRoute | ProbeMe | Probed


def is_relay_datagram(data: bytes) -> bool:
    return bool(data) and data[0] in FIRST_BYTE_RANGE


def allocation_statement(relay: PeerId, txid: bytes, nonce: bytes, client: PeerId) -> bytes:
    """What a client signs to allocate on ``relay``."""
    return SIGNING_DOMAIN + relay.public_key + txid + nonce + client.public_key


def encode(message: Message) -> bytes:
    match message:
        case Allocate(txid, nonce, client, signature):
            _check_len(txid, TXID_LEN, "txid")
            _check_len(nonce, NONCE_LEN, "nonce")
            _check_len(signature, SIGNATURE_LEN, "signature")
            return bytes([Kind.ALLOCATE]) + txid + nonce + client.public_key + signature
        case Challenge(txid, nonce):
            return bytes([Kind.CHALLENGE]) + txid + nonce
        case Allocated(txid, lifetime_s, other_port, observed):
            head = bytes([Kind.ALLOCATED]) + txid + struct.pack("!HH", lifetime_s, other_port)
            return head + encode_endpoint(observed)
        case Refused(txid, reason):
            return bytes([Kind.REFUSED]) + txid + bytes([reason])
        case Send(destination, packet):
            return bytes([Kind.SEND]) + destination.public_key + packet
        case Data(source, packet):
            return bytes([Kind.DATA]) + source.public_key + packet
        case NoRoute(destination):
            return bytes([Kind.NO_ROUTE]) + destination.public_key
        case ProbeMe(txid):
            return bytes([Kind.PROBE_ME]) + txid
        case Probed(txid):
            return bytes([Kind.PROBED]) + txid
    raise RelayWireError(f"cannot encode {message!r}")


def decode(data: bytes) -> Message:
    if not data:
        raise RelayWireError("empty datagram")
    try:
        kind = Kind(data[0])
    except ValueError as exc:
        raise RelayWireError(f"unknown relay message 0x{data[0]:02x}") from exc
    body = data[1:]
    if kind is Kind.ALLOCATE:
        _exact(body, TXID_LEN + NONCE_LEN + KEY_LEN + SIGNATURE_LEN, kind)
        txid, rest = body[:TXID_LEN], body[TXID_LEN:]
        nonce, rest = rest[:NONCE_LEN], rest[NONCE_LEN:]
        return Allocate(txid, nonce, _peer(rest[:KEY_LEN]), rest[KEY_LEN:])
    if kind is Kind.CHALLENGE:
        _exact(body, TXID_LEN + NONCE_LEN, kind)
        return Challenge(body[:TXID_LEN], body[TXID_LEN:])
    if kind is Kind.ALLOCATED:
        if len(body) < TXID_LEN + 4:
            raise RelayWireError("truncated ALLOCATED")
        lifetime, other_port = struct.unpack_from("!HH", body, TXID_LEN)
        observed, rest = decode_endpoint(body[TXID_LEN + 4 :])
        if rest:
            raise RelayWireError("trailing bytes after ALLOCATED")
        return Allocated(body[:TXID_LEN], lifetime, other_port, observed)
    if kind is Kind.REFUSED:
        _exact(body, TXID_LEN + 1, kind)
        try:
            reason = RefusalReason(body[TXID_LEN])
        except ValueError as exc:
            raise RelayWireError("unknown refusal reason") from exc
        return Refused(body[:TXID_LEN], reason)
    if kind in (Kind.SEND, Kind.DATA):
        if len(body) <= KEY_LEN:
            raise RelayWireError(f"{kind.name} without a packet")
        peer = _peer(body[:KEY_LEN])
        return Send(peer, body[KEY_LEN:]) if kind is Kind.SEND else Data(peer, body[KEY_LEN:])
    if kind is Kind.NO_ROUTE:
        _exact(body, KEY_LEN, kind)
        return NoRoute(_peer(body))
    _exact(body, TXID_LEN, kind)
    return ProbeMe(body) if kind is Kind.PROBE_ME else Probed(body)


def encode_endpoint(endpoint: Endpoint) -> bytes:
    address = ipaddress.ip_address(endpoint.host)
    return bytes([address.version]) + address.packed + struct.pack("!H", endpoint.port)


def decode_endpoint(data: bytes) -> tuple[Endpoint, bytes]:
    """Decode one endpoint from the front of ``data``; return it and the bytes after it."""
    if not data or data[0] not in (4, 6):
        raise RelayWireError("bad endpoint family")
    size = 4 if data[0] == 4 else 16
    if len(data) < 1 + size + 2:
        raise RelayWireError("truncated endpoint")
    raw = data[1 : 1 + size]
    host = ipaddress.IPv4Address(raw) if size == 4 else ipaddress.IPv6Address(raw)
    (port,) = struct.unpack_from("!H", data, 1 + size)
    if port == 0:
        raise RelayWireError("endpoint port 0")
    return Endpoint(str(host), port), data[1 + size + 2 :]


def _peer(raw: bytes) -> PeerId:
    return PeerId.from_public_key(raw)


def _exact(body: bytes, length: int, kind: Kind) -> None:
    if len(body) != length:
        raise RelayWireError(f"{kind.name} has {len(body)} bytes, expected {length}")


def _check_len(value: bytes, length: int, what: str) -> None:
    if len(value) != length:
        raise RelayWireError(f"{what} must have {length} bytes")
