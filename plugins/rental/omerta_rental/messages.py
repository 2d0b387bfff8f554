"""The rental protocol's messages and their wire form (UTF-8 JSON on the transport channel ``rental``).

Every message names its rental (a random id the consumer picks) and its type; the transport has
already authenticated the sender. :func:`decode` is the only reader of untrusted bytes: it bounds
the size, checks every field's type and raises only :class:`MessageError`. Pure; touches nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from omerta_core.errors import OmertaError

#: The transport channel the rental protocol runs on.
CHANNEL = "rental"
#: Largest message accepted: the biggest legitimate one (a request with an SSH key and an activity) is ~2 KiB.
MAX_MESSAGE_BYTES = 8192
#: Longest text field (activity description, refusal reason, SSH key line).
MAX_TEXT = 2048
_RENTAL_ID = re.compile(r"[0-9a-f]{16,64}")
#: A VM id as the consumer uses it (it names the VM's gateway directory): no path separators, no leading dot.
_VM_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,63}")


class MessageError(OmertaError, ValueError):
    """Bytes that are not a well-formed rental message."""


@dataclass(frozen=True)
class Message:
    TYPE: ClassVar[str] = ""
    rental: str


@dataclass(frozen=True)
class Request(Message):
    """Consumer → provider: rent a VM."""

    TYPE: ClassVar[str] = "request"
    vcpus: int
    memory_mib: int
    disk_gib: int
    image: str
    lease_s: int
    activity: str
    ssh_public_key: str
    max_price: int


@dataclass(frozen=True)
class Admitted(Message):
    """Provider → consumer: admission passed; lock ``amount`` in escrow for this provider. ``vm_id`` is the id
    the VM will have once the lock is confirmed and it is created (the consumer builds its VPN gateway for it
    meanwhile); empty when the provider cannot tell before ``ready``."""

    TYPE: ClassVar[str] = "admitted"
    price_per_hour: int
    amount: int
    vm_id: str


@dataclass(frozen=True)
class Refused(Message):
    """Provider → consumer: the request (or the rental at any step before ready) is refused, and why."""

    TYPE: ClassVar[str] = "refused"
    reason: str


@dataclass(frozen=True)
class Locked(Message):
    """Consumer → provider: the escrow is locked under ``session``."""

    TYPE: ClassVar[str] = "locked"
    session: str


@dataclass(frozen=True)
class Progress(Message):
    """Provider → consumer: a step on the way to ready (creating, booting)."""

    TYPE: ClassVar[str] = "progress"
    step: str
    detail: str


@dataclass(frozen=True)
class Ready(Message):
    """Provider → consumer: the VM runs; ``lease_ms`` of paid time start now; ``host_key`` is the guest's SSH
    host key as the provider learned it (``TYPE BASE64``, empty when unknown)."""

    TYPE: ClassVar[str] = "ready"
    vm_id: str
    address: str
    lease_ms: int
    host_key: str


@dataclass(frozen=True)
class Heartbeat(Message):
    """Either way, every heartbeat interval while the lease runs."""

    TYPE: ClassVar[str] = "heartbeat"


@dataclass(frozen=True)
class ToppedUp(Message):
    """Consumer → provider: the lock now holds ``total``."""

    TYPE: ClassVar[str] = "topped_up"
    total: int


@dataclass(frozen=True)
class Extended(Message):
    """Provider → consumer: the lease now holds ``lease_ms`` of paid time from ready."""

    TYPE: ClassVar[str] = "extended"
    lease_ms: int


@dataclass(frozen=True)
class Release(Message):
    """Consumer → provider: end the lease now."""

    TYPE: ClassVar[str] = "release"


@dataclass(frozen=True)
class Ended(Message):
    """Provider → consumer: the lease ended for ``reason``; the VM is deleted; ``billable_ms`` is owed."""

    TYPE: ClassVar[str] = "ended"
    reason: str
    billable_ms: int


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls for cls in (Request, Admitted, Refused, Locked, Progress, Ready, Heartbeat, ToppedUp, Extended,
                              Release, Ended)
}  # fmt: skip


def encode(message: Message) -> bytes:
    return json.dumps({"type": message.TYPE, **asdict(message)}, separators=(",", ":")).encode()


def decode(data: bytes) -> Message:
    """Parse one message; raise :class:`MessageError` (one line) for anything else."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise MessageError(f"rental message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise MessageError(f"rental message is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise MessageError("rental message is not an object")
    cls = MESSAGE_TYPES.get(raw.get("type"))  # type: ignore[arg-type]
    if cls is None:
        raise MessageError(f"unknown rental message type {raw.get('type')!r}")
    values: dict[str, Any] = {}
    for field in fields(cls):
        value = raw.get(field.name)
        if field.type == "int":
            if type(value) is not int or not 0 <= value < 2**53:
                raise MessageError(f"{cls.TYPE}.{field.name} must be a non-negative integer")
        elif type(value) is not str or len(value) > MAX_TEXT:
            raise MessageError(f"{cls.TYPE}.{field.name} must be text of at most {MAX_TEXT} characters")
        values[field.name] = value
    if not _RENTAL_ID.fullmatch(values["rental"]):
        raise MessageError("rental id must be 16 to 64 lowercase hex digits")
    vm_id = values.get("vm_id")
    if vm_id is not None and not (_VM_ID.fullmatch(vm_id) or (cls is Admitted and vm_id == "")):
        raise MessageError(f"{cls.TYPE}.vm_id must be 1 to 64 letters, digits, '_', '.' or '-', not starting with "
                           "'.', '_' or '-'")  # fmt: skip
    return cls(**values)
