"""Native functions: the built-ins of ``.omt`` and any a host registers.

A native is ``fn(ctx, *args) -> value``. It must be deterministic given its arguments
and the :class:`NativeContext` (peer, session, event time, ledger view), return a
JSON-like value, and never do I/O, read the wall clock, draw real randomness or change
the store: actors must reach the same decision on every replay. Names not matching
a registered native fail when the instance is created, not mid-transaction.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from omerta_core.identity import verify
from omerta_core.interfaces.common import PeerId
from omerta_ledger_omt.omt.errors import OmtRuntimeError
from omerta_ledger_omt.omt.runtime.host import LedgerView, Signer
from omerta_ledger_omt.omt.runtime.values import canonical_bytes, digest

Native = Callable[..., Any]


@dataclass
class NativeContext:
    peer_id: str
    session: str
    now: float
    signer: Signer
    ledger: LedgerView
    store: Mapping[str, Any]
    apply: Callable[..., Any]  # call an .omt lambda value with arguments
    next_counter: Callable[[], int]


class NativeRegistry:
    """Name -> native function."""

    def __init__(self, natives: Mapping[str, Native] | None = None) -> None:
        self._natives: dict[str, Native] = dict(natives or {})

    def register(self, name: str, fn: Native) -> None:
        self._natives[name] = fn

    def with_natives(self, extra: Mapping[str, Native]) -> NativeRegistry:
        return NativeRegistry({**self._natives, **extra})

    def get(self, name: str) -> Native | None:
        return self._natives.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._natives


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, dict):
        return list(value)
    if isinstance(value, list | tuple | str):
        return list(value)
    raise OmtRuntimeError(f"expected a list, got {type(value).__name__}")


def _numbers(args: tuple[Any, ...]) -> list[Any]:
    return _items(args[0]) if len(args) == 1 else list(args)


def _verify_sig(ctx: NativeContext, peer: Any, value: Any, signature: Any) -> bool:
    try:
        return verify(PeerId(str(peer)), canonical_bytes(value), bytes.fromhex(str(signature)))
    except (ValueError, TypeError):
        return False


def seeded_sample(seed: Any, items: Any, n: Any) -> list[Any]:
    """Reproducible sample: items ranked by SHA-256 of (seed, item), first ``n`` taken.

    Specified so that any implementation picks the same witnesses from the same inputs.
    """
    ranked = sorted(_items(items), key=lambda item: (digest([seed, item]), digest(item)))
    return ranked[: max(0, int(n))]


def _random_bytes(ctx: NativeContext, n: Any) -> str:
    material = canonical_bytes(["random", ctx.session, ctx.peer_id, ctx.next_counter()])
    out = b""
    while len(out) < int(n):
        out += hashlib.sha256(material + len(out).to_bytes(4, "big")).digest()
    return out[: int(n)].hex()


def _get(ctx: NativeContext, mapping: Any, key: Any, default: Any = None) -> Any:
    if isinstance(mapping, dict):
        return mapping.get(key, default)
    if isinstance(mapping, list) and isinstance(key, int) and -len(mapping) <= key < len(mapping):
        return mapping[key]
    return default


def _sort(ctx: NativeContext, items: Any, key: Any = None) -> list[Any]:
    values = _items(items)
    if key is None:
        return sorted(values, key=digest) if any(isinstance(v, dict | list) for v in values) else sorted(values)
    return sorted(values, key=lambda v: ctx.apply(key, v))


def _div(ctx: NativeContext, a: Any, b: Any) -> int:
    if type(a) is not int or type(b) is not int:
        raise OmtRuntimeError(f"DIV needs integers, got {type(a).__name__} and {type(b).__name__}")
    if b == 0:
        raise OmtRuntimeError("DIV by zero")
    return a // b


def _abort(ctx: NativeContext, reason: Any) -> None:
    raise OmtRuntimeError(f"ABORT: {reason}")


def standard_natives() -> NativeRegistry:
    """The built-ins listed in :mod:`omerta_ledger_omt.omt.stdlib`."""
    table: dict[str, Native] = {
        "LENGTH": lambda ctx, v: len(_items(v)),
        "FILTER": lambda ctx, xs, f: [x for x in _items(xs) if ctx.apply(f, x) is True],
        "MAP": lambda ctx, xs, f: [ctx.apply(f, x) for x in _items(xs)],
        "CONCAT": lambda ctx, *ls: [x for v in ls for x in _items(v)],
        "SORT": _sort,
        "UNIQUE": lambda ctx, xs: list({digest(x): x for x in reversed(_items(xs))}.values())[::-1],
        "CONTAINS": lambda ctx, xs, v: v in _items(xs),
        "REMOVE": lambda ctx, xs, v: [x for x in _items(xs) if x != v],
        "SET_EQUALS": lambda ctx, a, b: {digest(x) for x in _items(a)} == {digest(x) for x in _items(b)},
        "HAS_KEY": lambda ctx, m, k: isinstance(m, dict) and k in m,
        "KEYS": lambda ctx, m: sorted(m) if isinstance(m, dict) else [],
        "GET": _get,
        "SUM": lambda ctx, xs: sum(_items(xs)),
        "MIN": lambda ctx, *xs: min(_numbers(xs)),
        "MAX": lambda ctx, *xs: max(_numbers(xs)),
        "ABS": lambda ctx, x: abs(x),
        "FLOOR": lambda ctx, x: math.floor(x),
        "DIV": _div,
        "HASH": lambda ctx, *xs: digest(xs[0] if len(xs) == 1 else list(xs)),
        "SIGN": lambda ctx, v: ctx.signer.sign(canonical_bytes(v)).hex(),
        "VERIFY_SIG": _verify_sig,
        "NOW": lambda ctx: ctx.now,
        "LOAD": lambda ctx, name: ctx.store.get(str(name)),
        "READ": lambda ctx, peer, key: ctx.ledger.read(str(peer), str(key)),
        "SEEDED_SAMPLE": lambda ctx, seed, xs, n: seeded_sample(seed, xs, n),
        "RANDOM_BYTES": _random_bytes,
        "GENERATE_ID": lambda ctx: _random_bytes(ctx, 16),
        "CHAIN_HEAD": lambda ctx: ctx.ledger.chain_head(),
        "CHAIN_SEGMENT": lambda ctx, h: ctx.ledger.chain_segment(str(h)),
        "VERIFY_CHAIN_SEGMENT": lambda ctx, peer, seg: ctx.ledger.verify_segment(str(peer), _items(seg)),
        "CHAIN_CONTAINS_HASH": lambda ctx, seg, h: any(isinstance(b, dict) and b.get("hash") == h for b in _items(seg)),
        "ABORT": _abort,
    }
    return NativeRegistry(table)
