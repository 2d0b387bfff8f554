"""The node's identity: an Ed25519 signing key kept in the state directory.

Touches only the key file (created with mode 0600 on first use).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.signing

from omerta_core.errors import IdentityError
from omerta_core.interfaces.common import PeerId
from omerta_core.paths import identity_key_path

KEY_FILE_MODE = 0o600
SEED_BYTES = 32


@dataclass(frozen=True)
class Identity:
    """An Ed25519 key pair and the peer id derived from its public half."""

    signing_key: nacl.signing.SigningKey

    @property
    def verify_key(self) -> nacl.signing.VerifyKey:
        return self.signing_key.verify_key

    @property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def peer_id(self) -> PeerId:
        return PeerId.from_public_key(self.public_key)

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte detached signature of ``message``."""
        return self.signing_key.sign(message).signature

    @classmethod
    def generate(cls) -> Identity:
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        return cls(nacl.signing.SigningKey(seed))


def verify(peer: PeerId, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``peer``'s signature of ``message``."""
    try:
        nacl.signing.VerifyKey(peer.public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, ValueError):
        return False
    return True


def load_or_create(state_dir: Path) -> Identity:
    """Load the identity from ``state_dir``, creating it (mode 0600) on first start."""
    path = identity_key_path(state_dir)
    if path.exists():
        return _load(path)
    identity = Identity.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(bytes(identity.signing_key))
    return identity


def _load(path: Path) -> Identity:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise IdentityError(f"{path} is readable by others (mode {mode:o}); run chmod 600 {path}")
    seed = path.read_bytes()
    if len(seed) != SEED_BYTES:
        raise IdentityError(f"{path} is not an Omerta identity key ({len(seed)} bytes, want 32)")
    return Identity.from_seed(seed)
