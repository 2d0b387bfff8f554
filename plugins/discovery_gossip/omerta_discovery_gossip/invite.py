"""Invite links: a network's identity and bootstrap peers, signed by the inviter, with an expiry.

The link is ``omerta://join/`` followed by the unpadded base64url of a msgpack
list. It carries the network key, because holding the key is what membership
means; the signature says who invited and stops anyone from altering the
bootstrap list or the expiry. Pure; touches nothing.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass

import msgpack

from omerta_core.identity import Identity, verify
from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_discovery_gossip.errors import InviteError, NetworkError
from omerta_discovery_gossip.network import Network

LINK_PREFIX = "omerta://join/"
SIGNING_CONTEXT = b"omerta/gossip/invite/1\n"
FORMAT_VERSION = 1
#: Bootstrap entries per invite: a handful of reachable members is all a joiner needs.
MAX_BOOTSTRAP = 8
#: Longest link accepted: far above a real invite, low enough that pasting garbage fails fast.
MAX_LINK_CHARS = 4096
#: Expiry times are Unix seconds; anything from year 36812 on is garbage (and breaks date formatting).
MAX_EXPIRY = 2**40


@dataclass(frozen=True)
class Invite:
    network: Network
    bootstrap: tuple[str, ...]
    inviter: PeerId
    expires_at: int
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        body = [self.network.name, self.network.key, list(self.bootstrap), self.inviter.public_key, self.expires_at]
        return SIGNING_CONTEXT + msgpack.packb(body)

    def link(self) -> str:
        body = [
            FORMAT_VERSION,
            self.network.name,
            self.network.key,
            list(self.bootstrap),
            self.inviter.public_key,
            self.expires_at,
            self.signature,
        ]
        return LINK_PREFIX + base64.urlsafe_b64encode(msgpack.packb(body)).decode().rstrip("=")


def create_invite(
    identity: Identity, network: Network, bootstrap: list[str], ttl_s: float, now: float | None = None
) -> Invite:
    """Sign an invite to ``network`` valid for ``ttl_s`` seconds."""
    if ttl_s <= 0:
        raise InviteError("an invite must be valid for a positive time")
    for entry in bootstrap:
        parse_bootstrap(entry)
    now = time.time() if now is None else now
    unsigned = Invite(network, tuple(bootstrap[:MAX_BOOTSTRAP]), identity.peer_id, int(now + ttl_s))
    return Invite(
        unsigned.network,
        unsigned.bootstrap,
        unsigned.inviter,
        unsigned.expires_at,
        identity.sign(unsigned.signed_bytes()),
    )


def parse_invite(link: str, now: float | None = None) -> Invite:
    """Decode and check an invite link; raise :class:`InviteError` with a one-line reason."""
    link = link.strip()
    if not link.startswith(LINK_PREFIX) or len(link) > MAX_LINK_CHARS:
        raise InviteError(f"not an omerta invite link (expected {LINK_PREFIX}...)")
    payload = link[len(LINK_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        body = msgpack.unpackb(raw)
        version, name, key, bootstrap, inviter_key, expires_at, signature = body
        if version != FORMAT_VERSION:
            raise InviteError(f"invite format {version} is not supported (this node reads format {FORMAT_VERSION})")
        if not isinstance(name, str) or not isinstance(key, bytes) or not isinstance(inviter_key, bytes):
            raise ValueError("wrong field types")
        if not isinstance(expires_at, int) or not isinstance(signature, bytes) or not isinstance(bootstrap, list):
            raise ValueError("wrong field types")
        if not 0 <= expires_at < MAX_EXPIRY:
            raise ValueError("expiry out of range")
        if len(bootstrap) > MAX_BOOTSTRAP or not all(isinstance(b, str) for b in bootstrap):
            raise ValueError("bootstrap is not a short list of HOST:PORT entries")
        for entry in bootstrap:
            parse_bootstrap(entry)
        invite = Invite(
            Network(name, key),
            tuple(bootstrap),
            PeerId.from_public_key(inviter_key),
            expires_at,
            signature,
        )
    except InviteError:
        raise
    except NetworkError as exc:  # e.g. a network key of the wrong length
        raise InviteError(f"invite link is damaged ({exc}); ask for a new one") from exc
    except (ValueError, TypeError, binascii.Error, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise InviteError("invite link is damaged (it does not decode); ask for a new one") from exc
    if not verify(invite.inviter, invite.signed_bytes(), invite.signature):
        raise InviteError(f"invite signature is not valid (claimed inviter {invite.inviter.short}); ask for a new one")
    now = time.time() if now is None else now
    if now > invite.expires_at:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(invite.expires_at))
        raise InviteError(f"invite expired at {stamp}; ask {invite.inviter.short} for a new one")
    return invite


def parse_bootstrap(entry: str) -> tuple[PeerId | None, Endpoint]:
    """Read ``HOST:PORT`` or ``PEERID@HOST:PORT``."""
    peer_text, sep, address = entry.strip().rpartition("@")
    try:
        endpoint = Endpoint.parse(address)
        return (PeerId(peer_text) if sep else None), endpoint
    except ValueError as exc:
        raise InviteError(f"bad bootstrap entry {entry!r}: expected HOST:PORT or PEERID@HOST:PORT") from exc
