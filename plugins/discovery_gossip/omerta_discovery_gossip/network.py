"""Networks: a secret key that gates membership, and the frame that proves it.

A network is identified by its 32-byte key; its id is a hash of the key. Every
gossip message of a network travels in a frame of (network id, MAC, body), the
MAC keyed by the network key: a node that lacks the key can neither read nor
inject a network's membership, and a frame never reaches another network's
state. The key never encrypts traffic (the transport's sessions do, per peer).
Pure; touches nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from omerta_discovery_gossip.errors import NetworkError
from omerta_discovery_gossip.peer_record import NETWORK_ID_BYTES

KEY_BYTES = 32
#: 128 bits of MAC are plenty against forgery; the full 32 bytes would only cost space in every datagram.
TAG_BYTES = 16
FRAME_HEADER_BYTES = NETWORK_ID_BYTES + TAG_BYTES
_ID_CONTEXT = b"omerta/network-id/1\n"
#: The network every node joins when it has joined no other: its key is public, so it gates nothing.
PUBLIC_NETWORK_KEY = hashlib.sha256(b"omerta/public-network/1").digest()
PUBLIC_NETWORK_NAME = "public"


@dataclass(frozen=True)
class Network:
    """A network this node belongs to."""

    name: str
    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise NetworkError(f"a network key has {KEY_BYTES} bytes, not {len(self.key)}")

    @classmethod
    def create(cls, name: str) -> Network:
        return cls(name, secrets.token_bytes(KEY_BYTES))

    @property
    def id(self) -> bytes:
        return network_id(self.key)

    @property
    def id_hex(self) -> str:
        return self.id.hex()

    def seal(self, body: bytes) -> bytes:
        """Frame ``body`` for this network."""
        return self.id + self._tag(body) + body

    def open(self, frame: bytes) -> bytes | None:
        """The body of a frame of this network, or ``None`` if its MAC is wrong."""
        if len(frame) < FRAME_HEADER_BYTES or frame[:NETWORK_ID_BYTES] != self.id:
            return None
        tag, body = frame[NETWORK_ID_BYTES:FRAME_HEADER_BYTES], frame[FRAME_HEADER_BYTES:]
        return body if hmac.compare_digest(tag, self._tag(body)) else None

    def _tag(self, body: bytes) -> bytes:
        return hmac.new(self.key, self.id + body, hashlib.sha256).digest()[:TAG_BYTES]


def network_id(key: bytes) -> bytes:
    return hashlib.sha256(_ID_CONTEXT + key).digest()[:NETWORK_ID_BYTES]


def frame_network_id(frame: bytes) -> bytes | None:
    """Which network a frame claims to belong to (unauthenticated; ``open`` checks)."""
    return frame[:NETWORK_ID_BYTES] if len(frame) >= FRAME_HEADER_BYTES else None


def public_network() -> Network:
    return Network(PUBLIC_NETWORK_NAME, PUBLIC_NETWORK_KEY)
