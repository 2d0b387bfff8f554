"""Bad input for tests: byte mutations of valid inputs and the decoder contract check.

Every decoder of untrusted bytes or text raises only its own documented error type
(``docs/architecture.md``, "Bad input"). Property tests hold that with :func:`mutate`
(libFuzzer-style edits of a valid input, driven by the random source hypothesis gives)
and :func:`only_raises`; the live bad-input tests feed the same mutations to real
nodes. Pure; touches nothing.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Byte values that sit on boundaries decoders get wrong: zero, sign bits, all ones, CBOR/msgpack markers.
INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0x1B, 0x3B, 0x5B, 0x9F, 0xBF, 0xC2, 0xDC, 0xDD, 0xCF)
#: Longest run an insertion adds: enough to cross length fields, small enough to stay cheap.
MAX_INSERT = 64


def mutate(data: bytes, rng: random.Random, edits: int | None = None) -> bytes:
    """``data`` after a few random edits: bit flips, byte sets, inserts, deletes, truncation, copies."""
    out = bytearray(data)
    for _ in range(edits if edits is not None else rng.randint(1, 4)):
        _edit(out, rng)
    return bytes(out)


def _edit(out: bytearray, rng: random.Random) -> None:
    choice = rng.randrange(7)
    if not out or choice == 0:  # insert random or interesting bytes
        at = rng.randint(0, len(out))
        if rng.random() < 0.5:
            chunk = rng.randbytes(rng.randint(1, MAX_INSERT))
        else:
            chunk = bytes([rng.choice(INTERESTING_BYTES)]) * rng.randint(1, MAX_INSERT)
        out[at:at] = chunk
        return
    at = rng.randrange(len(out))
    if choice == 1:
        out[at] ^= 1 << rng.randrange(8)
    elif choice == 2:
        out[at] = rng.choice(INTERESTING_BYTES)
    elif choice == 3:
        del out[at : at + rng.randint(1, 16)]
    elif choice == 4:
        del out[at:]
    elif choice == 5:  # copy a slice elsewhere (repeats a length field, a header, a frame)
        end = min(len(out), at + rng.randint(1, 32))
        out[rng.randint(0, len(out)) : 0] = out[at:end]
    else:
        out[at] = rng.randrange(256)


class ContractBrokenError(AssertionError):
    """A decoder raised something other than its documented error type."""


def only_raises(errors: type[BaseException] | tuple[type[BaseException], ...], decode: Callable[[], T]) -> T | None:
    """Run ``decode``; return its result, ``None`` if it raised one of ``errors``, and fail on anything else."""
    try:
        return decode()
    except errors:
        return None
    except Exception as exc:  # the contract under test: anything else escaping is the bug
        raise ContractBrokenError(f"{type(exc).__name__} escaped the decoder: {exc!s:.300}") from exc
