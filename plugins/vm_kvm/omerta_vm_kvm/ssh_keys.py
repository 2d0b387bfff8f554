"""Validation of a consumer's SSH public key before it goes into a cloud-init seed.

Pure: parses the OpenSSH one-line format and checks the key blob names the same
algorithm as the line. Touches nothing.
"""

from __future__ import annotations

import base64
import binascii
import struct

from omerta_vm_kvm.errors import InvalidSshKeyError

#: Algorithms a consumer may use; DSA is refused (OpenSSH disabled it in 2015).
ALLOWED_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
#: Longer than any real public key line (a 16384-bit RSA key is about 2.8 kB).
MAX_KEY_LINE = 8192


def validate_ssh_public_key(text: str) -> str:
    """Return the key as one normalised line, or raise :class:`InvalidSshKeyError`."""
    line = text.strip()
    if not line or len(line) > MAX_KEY_LINE or "\n" in line or "\r" in line:
        raise InvalidSshKeyError("SSH public key must be one line of 'TYPE BASE64 [COMMENT]'")
    parts = line.split(maxsplit=2)
    if len(parts) < 2:
        raise InvalidSshKeyError("SSH public key must be one line of 'TYPE BASE64 [COMMENT]'")
    key_type, blob_text = parts[0], parts[1]
    if key_type not in ALLOWED_KEY_TYPES:
        raise InvalidSshKeyError(f"SSH key type {key_type[:40]!r} is not accepted")
    try:
        blob = base64.b64decode(blob_text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSshKeyError("SSH public key body is not valid base64") from exc
    if len(blob) < 4:
        raise InvalidSshKeyError("SSH public key body is truncated")
    (name_len,) = struct.unpack(">I", blob[:4])
    if blob[4 : 4 + name_len].decode("ascii", errors="replace") != key_type:
        raise InvalidSshKeyError(f"SSH public key body is not a {key_type} key")
    if len(blob) <= 4 + name_len:
        raise InvalidSshKeyError("SSH public key body is truncated")
    return " ".join(parts)
