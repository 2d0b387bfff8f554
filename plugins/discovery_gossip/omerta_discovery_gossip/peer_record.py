"""Signed peer records: what one peer says about itself in one network.

A record names the peer, the network it is valid in, where the peer may be
reached (bound and reflected endpoints), the relays it uses, what it offers,
and a version counter. The peer signs all of it, so no other member can
poison its endpoints; the newest valid record wins. Pure; touches nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import msgpack

from omerta_core.identity import Identity, verify
from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_discovery_gossip.errors import RecordError

#: Domain separation: a record signature can never be mistaken for another signed object.
SIGNING_CONTEXT = b"omerta/gossip/peer-record/1\n"
#: Endpoints a record may list: a few bound ones plus recent reflections; more is noise (or an attack).
MAX_ENDPOINTS = 8
#: Relays a peer uses at once; the relay plugin keeps two or three.
MAX_RELAYS = 4
#: Capabilities ride in every record that gossip carries, so they must stay small.
MAX_CAPABILITIES_BYTES = 512
#: Integers in capabilities stay within what every JSON reader holds exactly (2**53 - 1).
MAX_CAPABILITY_INT = 2**53 - 1
#: Longest host string accepted (an IPv6 literal with a zone fits easily).
MAX_HOST_CHARS = 64
SIGNATURE_BYTES = 64
NETWORK_ID_BYTES = 8


@dataclass(frozen=True)
class PeerRecord:
    """One peer's signed statement about itself in one network."""

    peer: PeerId
    network: bytes
    endpoints: tuple[Endpoint, ...]
    version: int
    relays: tuple[PeerId, ...] = ()
    capabilities: dict[str, Any] = field(default_factory=dict)
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        """The exact bytes the signature covers."""
        body = [
            self.network,
            self.peer.public_key,
            [[e.host, e.port] for e in self.endpoints],
            [r.public_key for r in self.relays],
            _canonical_capabilities(self.capabilities),
            self.version,
        ]
        return SIGNING_CONTEXT + msgpack.packb(body)

    def signed_by(self, identity: Identity) -> PeerRecord:
        if identity.peer_id != self.peer:
            raise RecordError("a peer record may only be signed by its own peer")
        return replace(self, signature=identity.sign(self.signed_bytes()))

    def is_valid(self) -> bool:
        return len(self.signature) == SIGNATURE_BYTES and verify(self.peer, self.signed_bytes(), self.signature)

    def to_wire(self) -> list[Any]:
        return [
            self.network,
            self.peer.public_key,
            [[e.host, e.port] for e in self.endpoints],
            [r.public_key for r in self.relays],
            _canonical_capabilities(self.capabilities),
            self.version,
            self.signature,
        ]

    def wire_size(self) -> int:
        return len(msgpack.packb(self.to_wire()))

    def as_json(self) -> dict[str, Any]:
        return {
            "peer": str(self.peer),
            "network": self.network.hex(),
            "endpoints": [str(e) for e in self.endpoints],
            "relays": [str(r) for r in self.relays],
            "capabilities": self.capabilities,
            "version": self.version,
        }


def create_record(
    identity: Identity,
    network: bytes,
    endpoints: tuple[Endpoint, ...],
    version: int,
    relays: tuple[PeerId, ...] = (),
    capabilities: dict[str, Any] | None = None,
) -> PeerRecord:
    """Build and sign this node's record."""
    record = PeerRecord(identity.peer_id, network, endpoints[:MAX_ENDPOINTS], version, relays, capabilities or {})
    _check_limits(record)
    return record.signed_by(identity)


def record_from_wire(item: Any) -> PeerRecord:
    """Decode and verify a record; raise :class:`RecordError` if it is malformed, unsigned or forged."""
    if not isinstance(item, list) or len(item) != 7:
        raise RecordError("peer record is not a 7-item list")
    network, key, endpoints, relays, capabilities, version, signature = item
    if not isinstance(network, bytes) or len(network) != NETWORK_ID_BYTES:
        raise RecordError("peer record has a malformed network id")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise RecordError("peer record has a malformed version")
    if not isinstance(signature, bytes):
        raise RecordError("peer record has a malformed signature")
    if not signature:
        raise RecordError("peer record is unsigned")
    try:
        record = PeerRecord(
            peer=_peer_from_key(key),
            network=network,
            endpoints=tuple(_endpoint_from_wire(e) for e in _list(endpoints, MAX_ENDPOINTS, "endpoints")),
            version=version,
            relays=tuple(_peer_from_key(r) for r in _list(relays, MAX_RELAYS, "relays")),
            capabilities=_capabilities_from_wire(capabilities),
            signature=signature,
        )
    except (ValueError, TypeError) as exc:
        raise RecordError(f"peer record is malformed: {exc}") from exc
    if not record.is_valid():
        raise RecordError(f"peer record of {record.peer.short} has a bad signature")
    return record


def _check_limits(record: PeerRecord) -> None:
    if len(record.relays) > MAX_RELAYS:
        raise RecordError(f"a record lists at most {MAX_RELAYS} relays")
    problem = _capabilities_problem(record.capabilities)
    if problem:
        raise RecordError(f"capabilities {problem}")
    if len(_canonical_capabilities(record.capabilities).encode()) > MAX_CAPABILITIES_BYTES:
        raise RecordError(f"capabilities exceed {MAX_CAPABILITIES_BYTES} bytes")


def _canonical_capabilities(capabilities: dict[str, Any]) -> str:
    """docs/discovery.md, canonical capabilities: keys sorted by code point, no spaces, ASCII escapes."""
    return json.dumps(capabilities, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _capabilities_problem(value: Any) -> str | None:
    """Why ``value`` has no canonical form (floats, huge integers), or None."""
    if isinstance(value, dict):
        return next((p for p in map(_capabilities_problem, value.values()) if p), None)
    if isinstance(value, list):
        return next((p for p in map(_capabilities_problem, value) if p), None)
    if isinstance(value, float):
        return "hold a number that is not an integer (use integer units)"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_CAPABILITY_INT:
        return f"hold an integer beyond ±{MAX_CAPABILITY_INT}"
    return None


def _capabilities_from_wire(text: Any) -> dict[str, Any]:
    if not isinstance(text, str) or len(text.encode()) > MAX_CAPABILITIES_BYTES:
        raise ValueError("capabilities are not a short JSON text")
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("capabilities are not a JSON object")
    problem = _capabilities_problem(value)
    if problem:
        raise ValueError(f"capabilities {problem}")
    if _canonical_capabilities(value) != text:
        raise ValueError("capabilities are not in canonical form")
    return value


def _list(value: Any, limit: int, what: str) -> list[Any]:
    if not isinstance(value, list) or len(value) > limit:
        raise ValueError(f"{what} is not a list of at most {limit}")
    return value


def _peer_from_key(key: Any) -> PeerId:
    if not isinstance(key, bytes):
        raise ValueError("peer key is not bytes")
    return PeerId.from_public_key(key)


def _endpoint_from_wire(item: Any) -> Endpoint:
    if not isinstance(item, list) or len(item) != 2:
        raise ValueError("endpoint is not a [host, port] pair")
    host, port = item
    if not isinstance(host, str) or not host or len(host) > MAX_HOST_CHARS:
        raise ValueError("endpoint host is malformed")
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError("endpoint port is out of range")
    return Endpoint(host, port)
