"""Gossip messages and their msgpack encoding.

Four messages: ``Ping`` and ``Ack`` (direct probe), ``PingReq`` (ask a member
to probe a target for us), ``Sync`` (anti-entropy: a digest of versions and the
records the other side lacks). Probes piggyback membership updates: ``Alive``
(a signed record), ``Suspect`` and ``Dead``. A record that fails verification
is dropped and counted, not fatal to the message. Pure; touches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack

from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_discovery_gossip.errors import RecordError, WireError
from omerta_discovery_gossip.peer_record import PeerRecord, record_from_wire

#: Digest entries name a peer by this many bytes of its public key: collisions are irrelevant at this size.
DIGEST_KEY_BYTES = 8
#: No message may carry more items than this, whatever its size (a bound on decoding work).
MAX_ITEMS = 256

_PING, _ACK, _PING_REQ, _SYNC = 1, 2, 3, 4
_ALIVE, _SUSPECT, _DEAD = 1, 2, 3


@dataclass(frozen=True)
class Alive:
    record: PeerRecord

    @property
    def peer(self) -> PeerId:
        return self.record.peer


@dataclass(frozen=True)
class Suspect:
    peer: PeerId
    version: int


@dataclass(frozen=True)
class Dead:
    peer: PeerId
    version: int


Update = Alive | Suspect | Dead


@dataclass
class Ping:
    seq: int
    updates: list[Update] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


@dataclass
class Ack:
    seq: int
    observed: Endpoint | None = None
    updates: list[Update] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


@dataclass
class PingReq:
    seq: int
    target: PeerId
    updates: list[Update] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


@dataclass
class Sync:
    digest: list[tuple[bytes, int]] | None
    records: list[PeerRecord] = field(default_factory=list)
    want_reply: bool = False
    observed: Endpoint | None = None
    #: The digest covers the peers whose key falls in slice ``index`` of ``count`` (see ``swim``).
    part: tuple[int, int] = (0, 1)
    rejected: list[str] = field(default_factory=list)


Message = Ping | Ack | PingReq | Sync


def encode_update(update: Update) -> bytes:
    return msgpack.packb(_update_to_wire(update))


def encode(message: Message, updates_wire: list[bytes] | None = None) -> bytes:
    """Encode ``message``; ``updates_wire`` are pre-encoded updates (see :func:`encode_update`)."""
    packer = msgpack.Packer()
    updates = packer.pack_array_header(len(updates_wire or [])) + b"".join(updates_wire or [])
    if isinstance(message, Ping):
        return packer.pack_array_header(3) + packer.pack(_PING) + packer.pack(message.seq) + updates
    if isinstance(message, Ack):
        head = packer.pack_array_header(4) + packer.pack(_ACK) + packer.pack(message.seq)
        return head + updates + packer.pack(_endpoint_to_wire(message.observed))
    if isinstance(message, PingReq):
        head = packer.pack_array_header(4) + packer.pack(_PING_REQ) + packer.pack(message.seq)
        return head + updates + packer.pack(message.target.public_key)
    digest = None if message.digest is None else [[k, v] for k, v in message.digest]
    records = [r.to_wire() for r in message.records]
    observed = _endpoint_to_wire(message.observed)
    return msgpack.packb([_SYNC, digest, records, message.want_reply, observed, list(message.part)])


def decode(data: bytes) -> Message:
    """Decode one message; raise :class:`WireError` if it is malformed."""
    try:
        body = msgpack.unpackb(data, max_array_len=MAX_ITEMS, max_map_len=MAX_ITEMS)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise WireError(f"undecodable gossip message: {exc}") from exc
    if not isinstance(body, list) or not body:
        raise WireError("gossip message is not a list")
    try:
        return _decode_body(body)
    except (ValueError, TypeError, IndexError) as exc:
        raise WireError(f"malformed gossip message: {exc}") from exc


def _decode_body(body: list[Any]) -> Message:
    kind = body[0]
    if kind == _SYNC:
        _, digest, raw_records, want_reply, observed, (index, count) = body
        if not isinstance(index, int) or not isinstance(count, int) or not 0 <= index < count <= MAX_ITEMS:
            raise ValueError("malformed digest slice")
        rejected: list[str] = []
        records = []
        for item in _as_list(raw_records):
            try:
                records.append(record_from_wire(item))
            except RecordError as exc:
                rejected.append(str(exc))
        digest_entries = _digest_from_wire(digest)
        return Sync(digest_entries, records, bool(want_reply), _endpoint_from_wire(observed), (index, count), rejected)
    seq = body[1]
    if not isinstance(seq, int):
        raise ValueError("sequence number is not an integer")
    updates, rejected = _updates_from_wire(body[2])
    if kind == _PING:
        return Ping(seq, updates, rejected)
    if kind == _ACK:
        return Ack(seq, _endpoint_from_wire(body[3]), updates, rejected)
    if kind == _PING_REQ:
        return PingReq(seq, _peer(body[3]), updates, rejected)
    raise ValueError(f"unknown message kind {kind!r}")


def _update_to_wire(update: Update) -> list[Any]:
    if isinstance(update, Alive):
        return [_ALIVE, update.record.to_wire()]
    kind = _SUSPECT if isinstance(update, Suspect) else _DEAD
    return [kind, update.peer.public_key, update.version]


def _updates_from_wire(items: Any) -> tuple[list[Update], list[str]]:
    updates: list[Update] = []
    rejected: list[str] = []
    for item in _as_list(items):
        if not isinstance(item, list) or len(item) < 2:
            raise ValueError("update is not a list")
        if item[0] == _ALIVE:
            try:
                updates.append(Alive(record_from_wire(item[1])))
            except RecordError as exc:
                rejected.append(str(exc))
        elif item[0] in (_SUSPECT, _DEAD) and len(item) == 3 and isinstance(item[2], int):
            cls = Suspect if item[0] == _SUSPECT else Dead
            updates.append(cls(_peer(item[1]), item[2]))
        else:
            raise ValueError("unknown update")
    return updates, rejected


def _digest_from_wire(items: Any) -> list[tuple[bytes, int]] | None:
    if items is None:
        return None
    digest = []
    for item in _as_list(items):
        key, version = item
        if not isinstance(key, bytes) or len(key) != DIGEST_KEY_BYTES or not isinstance(version, int):
            raise ValueError("malformed digest entry")
        digest.append((key, version))
    return digest


def _as_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("expected a list")
    return value


def _peer(key: Any) -> PeerId:
    if not isinstance(key, bytes):
        raise ValueError("peer key is not bytes")
    return PeerId.from_public_key(key)


def _endpoint_to_wire(endpoint: Endpoint | None) -> list[Any] | None:
    return None if endpoint is None else [endpoint.host, endpoint.port]


def _endpoint_from_wire(item: Any) -> Endpoint | None:
    if item is None:
        return None
    host, port = item
    if not isinstance(host, str) or not host or len(host) > 64 or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError("malformed endpoint")
    return Endpoint(host, port)
