"""Field checks for block payloads and statement bodies: each field names its type.

A schema maps a field name to a :class:`Field`; :func:`check` raises a one-line
reason for a missing, unknown or ill-typed field. Touches nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from omerta_core.interfaces.common import InvalidPeerIdError, PeerId
from omerta_ledger_omt.ledger.encoding import HASH_BYTES

#: Longest free-text field (reasons, details): enough for a sentence, not for a payload smuggled in text.
MAX_TEXT = 512

#: Peer ids whose validity is remembered: a node sees the same few thousand ids over and over.
PEER_CACHE_SIZE = 65536

#: Most entries in any list field (witness lists, checkpoint heads, evidence hashes).
MAX_LIST = 1024


@dataclass(frozen=True)
class Field:
    """One expected field: a checker returning an error text (or None) and whether it may be absent."""

    check: Callable[[Any], str | None]
    optional: bool = False


def _peer(value: Any) -> str | None:
    return _peer_text(value) if isinstance(value, str) else "is not a peer id"


@functools.lru_cache(maxsize=PEER_CACHE_SIZE)
def _peer_text(value: str) -> str | None:
    try:
        PeerId(value)
    except InvalidPeerIdError:
        return "is not a peer id"
    return None if value == value.strip().lower() else "is not a normalised peer id"


def _hash(value: Any) -> str | None:
    return None if isinstance(value, bytes) and len(value) == HASH_BYTES else f"is not a {HASH_BYTES}-byte hash"


def _amount(value: Any) -> str | None:
    return None if type(value) is int and value > 0 else "is not a positive integer amount"


def _count(value: Any) -> str | None:
    return None if type(value) is int and value >= 0 else "is not a non-negative integer"


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) and len(value) <= MAX_TEXT else f"is not text of at most {MAX_TEXT} chars"


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "is not a boolean"


def _map(value: Any) -> str | None:
    return None if isinstance(value, dict) else "is not a map"


def _bytes(value: Any) -> str | None:
    return None if isinstance(value, bytes) and len(value) <= MAX_TEXT else "is not a short byte string"


def _score(value: Any) -> str | None:
    return None if type(value) is int and -1000 <= value <= 1000 else "is not a score in thousandths (-1000..1000)"


def one_of(*choices: str) -> Callable[[Any], str | None]:
    def checker(value: Any) -> str | None:
        return None if value in choices else f"is not one of {', '.join(choices)}"

    return checker


def list_of(item: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    def checker(value: Any) -> str | None:
        if not isinstance(value, list) or len(value) > MAX_LIST:
            return f"is not a list of at most {MAX_LIST} entries"
        for entry in value:
            problem = item(entry)
            if problem:
                return f"has an entry that {problem}"
        return None

    return checker


def _state_value(value: Any) -> str | None:
    if (type(value) is int and value >= 0) or (isinstance(value, str) and len(value) <= MAX_TEXT):
        return None
    return "is not a non-negative integer or short text"


def _head(value: Any) -> str | None:
    if not isinstance(value, list) or len(value) != 3:
        return "is not a [peer, seq, hash] head"
    return _peer(value[0]) or _count(value[1]) or _hash(value[2])


PEER = Field(_peer)
HASH = Field(_hash)
AMOUNT = Field(_amount)
COUNT = Field(_count)
TEXT = Field(_text)
FLAG = Field(_flag)
MAP = Field(_map)
BYTES = Field(_bytes)
SCORE = Field(_score)
PEERS = Field(list_of(_peer))
HASHES = Field(list_of(_hash))
HEADS = Field(list_of(_head))
MAPS = Field(list_of(_map))
#: The value of a state answer (spec 03): a count or amount, or text (a head hash, ``unknown``).
STATE_VALUE = Field(_state_value)


def optional(field: Field) -> Field:
    return Field(field.check, optional=True)


def check(what: str, value: Any, schema: Mapping[str, Field]) -> None:
    """Raise ``ValueError`` naming the first field of ``value`` that breaks ``schema``."""
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a map")
    unknown = sorted(set(value) - set(schema))
    if unknown:
        raise ValueError(f"{what} has unknown field {unknown[0]!r}")
    for name, field in schema.items():
        if name not in value:
            if field.optional:
                continue
            raise ValueError(f"{what} lacks field {name!r}")
        problem = field.check(value[name])
        if problem:
            raise ValueError(f"{what} field {name!r} {problem}")
