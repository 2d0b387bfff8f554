"""Canonical encoding of runtime values: what gets hashed and signed.

Values are JSON-like (None, bool, int, float, str, list, dict with string keys).
The encoding is UTF-8 JSON with keys sorted by code point, no whitespace, ``bytes`` as
lower-case hex, floats in their shortest round-trip form and no NaN or infinity, so
independent implementations agree byte for byte (docs/ledger.md §1.2 defines it).
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
    """The canonical JSON of ``value`` (docs/ledger.md §1.2); NaN, infinities and lone surrogates have none."""
    try:
        text = json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode()
    except (ValueError, UnicodeEncodeError) as exc:
        raise OmtRuntimeError(f"value cannot be encoded canonically: {exc}") from exc


def digest(value: Any) -> str:
    """Hex SHA-256 of the canonical encoding."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()
