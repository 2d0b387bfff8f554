"""What the provider gives one direct-boot guest besides its image: its SSH host key, made on the host.

A direct-boot image's ``initrd.img`` is shared by every VM; each VM whose request carries a consumer key
boots from its own copy with a small archive appended (Linux unpacks concatenated initramfs archives in
turn, later files over earlier ones), holding ``/etc/dropbear/host_key``. The key is made here, in
microseconds, instead of by ``dropbearkey`` in the guest, which took 0.4 s of its emulated CPU before the
ready line under TCG; and the provider knows the public half before the guest boots, as for a cloud image.

:func:`dropbear_host_key` and :func:`newc_archive` are pure (the key from the random source PyNaCl uses);
:func:`write_vm_initrd` reads the image's initrd and writes only the path it is given (mode 0600: it holds
the private key).
"""

from __future__ import annotations

import base64
import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import SigningKey

#: Where the guest's init finds its host key (``dropbear -r``).
HOST_KEY_PATH = "etc/dropbear/host_key"
_KEY_TYPE = b"ssh-ed25519"
#: The ``newc`` cpio header's magic (``Documentation/driver-api/early-userspace/buffer-format.rst``).
_NEWC_MAGIC = b"070701"
_S_IFDIR, _S_IFREG = 0o040000, 0o100000


@dataclass(frozen=True)
class GuestHostKey:
    """An ed25519 host key: dropbear's private key file and the OpenSSH public line (``ssh-ed25519 BASE64``)."""

    private: bytes
    public: str


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def dropbear_host_key(seed: bytes | None = None) -> GuestHostKey:
    """A fresh ed25519 host key (from ``seed``, 32 bytes, when given) in dropbear's file format: the key type
    and the 64-byte secret (seed, then public key), each an SSH string."""
    signing = SigningKey(seed) if seed is not None else SigningKey.generate()
    public = bytes(signing.verify_key)
    private = _ssh_string(_KEY_TYPE) + _ssh_string(bytes(signing) + public)
    line = base64.b64encode(_ssh_string(_KEY_TYPE) + _ssh_string(public)).decode()
    return GuestHostKey(private, f"{_KEY_TYPE.decode()} {line}")


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _newc_entry(name: str, mode: int, data: bytes, ino: int) -> bytes:
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, 1 if mode & _S_IFREG else 2, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
    header = _NEWC_MAGIC + b"".join(b"%08X" % value for value in fields)
    return _pad4(header + encoded) + _pad4(data)


def newc_archive(files: dict[str, tuple[int, bytes]]) -> bytes:
    """A ``newc`` cpio archive of ``files`` (relative path -> (permission bits, content)), owned by root, with
    each file's missing parent directories (mode 0755) before it."""
    entries: list[bytes] = []
    made: set[str] = set()
    for path, (mode, data) in files.items():
        parts = path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent not in made:
                made.add(parent)
                entries.append(_newc_entry(parent, _S_IFDIR | 0o755, b"", len(entries) + 1))
        entries.append(_newc_entry(path, _S_IFREG | mode, data, len(entries) + 1))
    return b"".join(entries) + _newc_entry("TRAILER!!!", 0, b"", 0)


def write_vm_initrd(base: Path, target: Path, host_key: GuestHostKey) -> None:
    """``target`` (new, mode 0600): the image's initrd ``base`` with an archive holding ``host_key`` appended."""
    addendum = gzip.compress(newc_archive({HOST_KEY_PATH: (0o600, host_key.private)}), mtime=0)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(base.read_bytes())
        out.write(addendum)
