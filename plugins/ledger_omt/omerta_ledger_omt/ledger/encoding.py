"""The canonical byte encoding of everything the ledger hashes or signs, and its hash.

Values are encoded as deterministic CBOR (RFC 8949): definite lengths, the
shortest integer forms, and map keys ordered by length, then bytewise (the
"canonical" order of RFC 7049 §3.9, which cbor2's ``canonical=True`` produces).
Only integers, text, bytes, booleans, null, arrays and text-keyed maps are
allowed: no floats (amounts are integer units, times integer milliseconds,
scores integer thousandths) and no tags, so two implementations cannot
disagree about a value's bytes. Decoding re-encodes and refuses any input that
is not already canonical. Touches nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any

import cbor2

from omerta_ledger_omt.ledger.errors import EncodingError

#: Length of every ledger hash: full SHA-256, never truncated (the original kept 64 bits).
HASH_BYTES = 32

#: Largest encoded value accepted from the network (a full sync response, see sync.py).
MAX_ENCODED_BYTES = 4 * 1024 * 1024

#: Integers are kept to CBOR's major types 0 and 1 (no bignum tags).
MIN_INT = -(2**64)
MAX_INT = 2**64 - 1

#: Deepest nesting accepted; blocks nest at most a block inside a statement inside a block.
MAX_DEPTH = 16


def canonical(value: Any) -> bytes:
    """Return the canonical encoding of ``value``; raise :class:`EncodingError` for unencodable values."""
    _check(value, 0)
    return cbor2.dumps(value, canonical=True)


def decode(data: bytes) -> Any:
    """Decode canonical bytes; refuse anything oversized, malformed or not canonical."""
    if len(data) > MAX_ENCODED_BYTES:
        raise EncodingError(f"encoded value of {len(data)} bytes exceeds {MAX_ENCODED_BYTES}")
    try:
        value = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several unrelated types for malformed input
        raise EncodingError(f"malformed CBOR: {exc}") from exc
    if canonical(value) != data:
        raise EncodingError("value is not canonically encoded")
    return value


def digest(data: bytes) -> bytes:
    """The ledger hash: SHA-256 of ``data``, all 32 bytes."""
    return hashlib.sha256(data).digest()


def hash_value(value: Any) -> bytes:
    """The ledger hash of a value's canonical encoding."""
    return digest(canonical(value))


def _check(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise EncodingError(f"value nested deeper than {MAX_DEPTH}")
    if isinstance(value, int) and not isinstance(value, bool):
        if not MIN_INT <= value <= MAX_INT:
            # never format the value: text of an integer past Python's digit limit raises ValueError
            raise EncodingError(f"integer of {value.bit_length()} bits is outside the 64-bit range")
        return
    if value is None or isinstance(value, (bool, str, bytes)):
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodingError(f"map key of type {type(key).__name__} is not text")
            _check(item, depth + 1)
        return
    raise EncodingError(f"{type(value).__name__} values cannot be encoded (use integers, text or bytes)")
