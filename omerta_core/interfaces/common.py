"""Types shared by every backend kind: peer ids, endpoints, the service lifecycle.

Pure data and protocols; touches nothing.
"""

from __future__ import annotations

import base64
import ipaddress
from typing import Any, NamedTuple, Protocol, runtime_checkable

from omerta_core.errors import OmertaError

#: Length in bytes of an Ed25519 public key, which a peer id encodes.
PUBLIC_KEY_BYTES = 32


class InvalidPeerIdError(OmertaError, ValueError):
    """A string that is not a well-formed peer id."""


class InvalidEndpointError(OmertaError, ValueError):
    """A string that is not ``HOST:PORT``."""


class PeerId(str):
    """A peer's identity: the lowercase, unpadded base32 of its Ed25519 public key.

    The id carries the whole key, so anyone holding a peer id can verify that
    peer's signatures and open an authenticated session to it without a lookup.
    """

    __slots__ = ()

    def __new__(cls, text: str) -> PeerId:
        text = text.strip().lower()
        try:
            raw = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
        except (ValueError, TypeError) as exc:
            raise InvalidPeerIdError(f"not a peer id: {text!r}") from exc
        if len(raw) != PUBLIC_KEY_BYTES:
            raise InvalidPeerIdError(f"not a peer id (wrong length): {text!r}")
        # the last character carries 4 unused bits: only the text with those bits zero names the key
        if base64.b32encode(raw).decode().rstrip("=").lower() != text:
            raise InvalidPeerIdError(f"not a peer id (not the canonical text of its key): {text!r}")
        return super().__new__(cls, text)

    @classmethod
    def from_public_key(cls, public_key: bytes) -> PeerId:
        if len(public_key) != PUBLIC_KEY_BYTES:
            raise InvalidPeerIdError("an Ed25519 public key has 32 bytes")
        return cls(base64.b32encode(public_key).decode().rstrip("=").lower())

    @property
    def public_key(self) -> bytes:
        return base64.b32decode(self.upper() + "=" * (-len(self) % 8))

    @property
    def short(self) -> str:
        """The first 12 characters, for logs and tables."""
        return self[:12]


class Endpoint(NamedTuple):
    """A transport address: an IPv4 or IPv6 host and a port."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """Parse ``HOST:PORT`` or ``[V6HOST]:PORT``."""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise InvalidEndpointError(f"expected HOST:PORT, got {text!r}")
        host = host.strip("[]")
        if not host:
            raise InvalidEndpointError(f"expected HOST:PORT, got {text!r}")
        number = int(port)
        if not 0 < number < 65536:
            raise InvalidEndpointError(f"port out of range in {text!r} (1-65535)")
        return cls(host, number)

    @property
    def is_ipv6(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).version == 6
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@runtime_checkable
class Service(Protocol):
    """What every backend object built by a record's factory provides."""

    async def start(self) -> None:
        """Begin serving; return once ready."""

    async def stop(self) -> None:
        """Release every resource this service created; must be safe to call twice."""

    def status(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot for ``omerta status``."""
