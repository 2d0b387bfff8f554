"""Chain sync as a sans-IO protocol: ask a peer for its heads, request missing ranges, verify, store.

Messages are canonical CBOR maps on the transport channel ``ledger.sync``:

* ``{t: "heads?", id}`` -> ``{t: "heads", id, heads: [[owner, seq, hash]...], proofs: [proof...]}``
* ``{t: "range?", id, owner, start, end}`` -> ``{t: "range", id, owner, blocks: [block bytes...]}``

:class:`SyncResponder` answers requests from the store. :class:`SyncClient` runs
one sync with one peer: ``begin()`` gives the first request, ``receive()`` takes
a response and gives the next requests; every block is signature-checked and
stored (forks become proofs). Malformed or unexpected messages are dropped and
counted. Touches the chain store only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omerta_ledger_omt.ledger.blocks import Block
from omerta_ledger_omt.ledger.encoding import canonical, decode
from omerta_ledger_omt.ledger.errors import EncodingError, InvalidBlockError, InvalidProofError
from omerta_ledger_omt.ledger.proofs import verified_proof
from omerta_ledger_omt.ledger.store import ChainStore

CHANNEL = "ledger.sync"

#: The value of ``t`` of every sync message: two requests and their responses (docs/ledger.md §4).
MESSAGE_TYPES = ("heads?", "heads", "range?", "range")

#: Blocks per range response: 256 blocks of ~1 KiB stay well under the transport's reliable message limit.
MAX_BLOCKS_PER_RESPONSE = 256

#: Heads per heads response: enough for a large network view, bounded so a response stays small.
MAX_HEADS = 4096

#: Proofs per heads response: proofs are rare, and each may carry a chain prefix.
MAX_PROOFS = 16


def is_request(message: dict[str, Any]) -> bool:
    return isinstance(message.get("t"), str) and message["t"].endswith("?")


def parse(data: bytes) -> dict[str, Any]:
    message = decode(data)
    if not isinstance(message, dict) or message.get("t") not in MESSAGE_TYPES or type(message.get("id")) is not int:
        raise EncodingError("sync message is not a {t, id, ...} map of a known type")
    return message


class SyncResponder:
    """Answers heads and range requests from the store."""

    def __init__(self, store: ChainStore) -> None:
        self.store = store
        self.answered = 0
        self.malformed = 0

    def answer(self, message: dict[str, Any]) -> bytes | None:
        kind = message["t"]
        try:
            if kind == "heads?":
                heads = [[h.owner, h.seq, h.hash] for h in self.store.heads()[:MAX_HEADS]]
                proofs = [p.to_wire() for p in self.store.proofs()[:MAX_PROOFS]]
                reply = {"t": "heads", "id": message["id"], "heads": heads, "proofs": proofs}
            elif kind == "range?":
                owner, start, end = message["owner"], message["start"], message["end"]
                if not isinstance(owner, str) or type(start) is not int or type(end) is not int:
                    raise EncodingError("range request needs owner, start and end")
                blocks = self.store.raw_blocks(owner, start, end, MAX_BLOCKS_PER_RESPONSE)
                reply = {"t": "range", "id": message["id"], "owner": owner, "blocks": blocks}
            else:
                raise EncodingError(f"unknown sync request {kind!r}")
        except (EncodingError, KeyError):
            self.malformed += 1
            return None
        self.answered += 1
        return canonical(reply)


@dataclass
class SyncClient:
    """One sync run against one peer."""

    store: ChainStore
    next_id: int = 1
    outstanding: dict[int, tuple[str, int, int]] = field(default_factory=dict)
    heads_id: int | None = None
    blocks_received: int = 0
    blocks_added: int = 0
    blocks_rejected: int = 0
    forks: int = 0
    proofs_added: int = 0
    dropped: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.heads_id is None and not self.outstanding

    def begin(self) -> bytes:
        self.heads_id = self._take_id()
        return canonical({"t": "heads?", "id": self.heads_id})

    def receive(self, message: dict[str, Any]) -> list[bytes]:
        """Take a response; return the requests to send next."""
        try:
            if message["t"] == "heads" and message["id"] == self.heads_id:
                self.heads_id = None
                return self._on_heads(message)
            if message["t"] == "range" and message["id"] in self.outstanding:
                return self._on_range(message)
        except (KeyError, TypeError, ValueError) as exc:
            self._drop(f"malformed {message.get('t')} response: {exc}")
            return []
        self._drop(f"unexpected {message.get('t')!r} response")
        return []

    def _on_heads(self, message: dict[str, Any]) -> list[bytes]:
        for wire in message["proofs"][:MAX_PROOFS]:
            try:
                self.proofs_added += self.store.add_proof(verified_proof(wire, self.store.params))
            except InvalidProofError as exc:
                self._drop(f"proof refused: {exc}")
        requests = []
        for owner, seq, _head in message["heads"][:MAX_HEADS]:
            if not isinstance(owner, str) or type(seq) is not int:
                raise ValueError("head entry is not [owner, seq, hash]")
            held = self.store.head(owner)
            start = held.seq + 1 if held else 0
            if seq >= start:
                requests.append(self._range(owner, start, seq))
        return requests

    def _on_range(self, message: dict[str, Any]) -> list[bytes]:
        owner, start, end = self.outstanding.pop(message["id"])
        blocks = []
        for raw in message["blocks"][:MAX_BLOCKS_PER_RESPONSE]:
            self.blocks_received += 1
            try:
                block = Block.decode(raw)
            except InvalidBlockError as exc:
                self.blocks_rejected += 1
                self.reasons.append(str(exc))
                continue
            if block.owner != owner or not start <= block.seq <= end:
                self.blocks_rejected += 1
                self.reasons.append(f"block {block.ref} was not asked for")
                continue
            blocks.append(block)
        counts = self.store.add_many(blocks)
        self.blocks_added += counts["added"]
        self.forks += counts["fork"]
        self.blocks_rejected += counts["unlinked"]
        last = max((b.seq for b in blocks), default=end)
        if blocks and counts["added"] and last < end:
            return [self._range(owner, last + 1, end)]
        return []

    def _range(self, owner: str, start: int, end: int) -> bytes:
        request_id = self._take_id()
        self.outstanding[request_id] = (owner, start, end)
        return canonical({"t": "range?", "id": request_id, "owner": owner, "start": start, "end": end})

    def _take_id(self) -> int:
        request_id = self.next_id
        self.next_id += 1
        return request_id

    def _drop(self, reason: str) -> None:
        self.dropped += 1
        self.reasons.append(reason)

    def summary(self) -> dict[str, Any]:
        return {
            "blocks_received": self.blocks_received,
            "blocks_added": self.blocks_added,
            "blocks_rejected": self.blocks_rejected,
            "forks": self.forks,
            "proofs_added": self.proofs_added,
            "dropped": self.dropped,
            "reasons": self.reasons[:10],
        }
