"""Canonical encoding of runtime values: what gets hashed and signed.

Values are JSON-like (None, bool, int, float, str, list, dict with string keys).
The encoding is UTF-8 JSON with sorted keys, no whitespace, and ``bytes`` as lower-case
hex, so independent implementations agree byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from omerta_ledger_omt.omt.errors import OmtRuntimeError


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise OmtRuntimeError(f"value of type {type(value).__name__} cannot be encoded")


def canonical_bytes(value: Any) -> bytes:
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(value: Any) -> str:
    """Hex SHA-256 of the canonical encoding."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()
