"""Binding the ``.omt`` runtime to the ledger: the chain view its natives read, and what its actions mean here.

* :class:`ChainLedgerView` answers the runtime's ``READ``/``CHAIN_*`` questions from the chain store:
  ``head_hash`` and ``head_seq`` (head of a held chain), ``available`` (available balance at that
  head as this node replays it), ``balance`` (the same minus locks this node has voted to accept
  and that are not on the chain yet), ``held_requests`` (the consumer's signed requests of those
  locks), ``trust`` (local trust in [0, 1]), ``trust_milli`` (the same in integer thousandths) and, for a
  session id in place of the peer, ``attested_duration_ms`` (the duration this node attested as a witness),
  ``attested_at`` (when, seconds), ``lock_witnessed_at`` (when it witnessed the lock, seconds), ``open_lock``
  (the lock as the consumer's chain holds it) and ``payment_claimed`` (the provider's payment is recorded on a
  chain held here);
  ``attested_available`` is the available balance a threshold of witnesses attested through spec 03 for
  the lock request being judged (None: none was, or its query failed) and ``attested_balance`` the same
  minus pending locks (0 without an attestation): spec 00's witnesses judge a lock by these. No figure
  outlives the request it was asked for, so a failed query can never leave an older one to judge by.
* :func:`block_for` turns an ``APPEND(chain, ...)`` of spec 00 into a ledger block: ``BALANCE_LOCK``
  becomes ``escrow_lock`` carrying the witness-signed lock result, ``BALANCE_TOPUP`` ``escrow_topup``
  carrying the witness-signed top-up result, ``WITNESS_COMMITMENT`` becomes
  ``witness_commitment``, ``DOUBLE_LOCK_ACCUSATION`` becomes an ``accusation`` carrying the proof;
  of spec 02, ``BALANCE_UNLOCK`` becomes ``escrow_settle`` and ``PAYMENT_RECEIVED`` ``escrow_payment``,
  each carrying the witness-signed settlement (the payment also the lock evidence from the consumer's chain);
  of spec 01, a witness's ``ATTESTATION`` and ``MISUSE_VERDICT`` become ``verification`` blocks
  (:mod:`.attestations`); of spec 03, the requester's ``STATE_ATTESTATION`` becomes ``state_attestation``
  carrying the agreeing witnesses' signed answers; of spec 04, ``AUDIT_RESULT`` becomes ``audit_result``
  (the published audit); of spec 05, ``CHECK_RESULT`` becomes ``check_result`` (times in ms, suspicion
  in thousandths).
* For specs 04 and 05 the view also answers ``genesis_hash``, ``last_health_check_at`` (seconds, or
  None: never checked) and ``suspicion`` (:mod:`.health`); ``CHAIN_SEGMENT("")`` is the whole chain.
* Envelopes travel as the runtime's canonical JSON on the transport channels ``ledger.omt`` (spec 00),
  ``ledger.omt.attest`` (spec 01), ``ledger.omt.settle`` (spec 02), ``ledger.omt.query`` (spec 03),
  ``ledger.omt.audit`` (spec 04) and ``ledger.omt.check`` (spec 05).

Touches the chain store (reads; pending witnessed locks).
"""

from __future__ import annotations

import json
from typing import Any

from omerta_ledger_omt.ledger.attestations import misuse_verdict_payload, verification_payload, witnessed_duration_ms
from omerta_ledger_omt.ledger.blocks import Block, BlockKind
from omerta_ledger_omt.ledger.claims import session_facts
from omerta_ledger_omt.ledger.errors import EncodingError, InvalidBlockError, LedgerError
from omerta_ledger_omt.ledger.health import Check, last_check_ms, suspicion_of
from omerta_ledger_omt.ledger.local import LocalLedger
from omerta_ledger_omt.ledger.store import ChainStore
from omerta_ledger_omt.omt.runtime import Envelope
from omerta_ledger_omt.omt.runtime.values import canonical_bytes

CHANNEL = "ledger.omt"
SETTLE_CHANNEL = "ledger.omt.settle"
ATTEST_CHANNEL = "ledger.omt.attest"
PROBE_CHANNEL = "ledger.omt.probe"
QUERY_CHANNEL = "ledger.omt.query"

# transactions 04 and 05 (stream 17b)
AUDIT_CHANNEL = "ledger.omt.audit"
CHECK_CHANNEL = "ledger.omt.check"

#: What spec 02 reads about a session (its id in place of the peer): the open lock, when this node attested
#: the session's end, when it witnessed the lock, whether the provider's payment is recorded
#: (:func:`.claims.session_facts`).
SESSION_KEYS = frozenset({"open_lock", "attested_at", "lock_witnessed_at", "payment_claimed"})

#: Largest envelope accepted: a provider's chain segment dominates; 1 MiB holds a few thousand blocks.
MAX_ENVELOPE_BYTES = 1024 * 1024


class ChainLedgerView:
    """The runtime's read-only view of this node's chains (deterministic for a given store state and time).

    ``now_ms`` is the time of the event being handled, set by the host before each step: trust
    depends on time (decay, identity age), so a replayed event reads the trust it read first.
    """

    def __init__(self, ledger: LocalLedger, now_ms: int = 0) -> None:
        self.ledger = ledger
        self.now_ms = now_ms
        #: consumer -> the available balance a threshold of witnesses attested (spec 03) for the lock request
        #: being judged; the engine sets it only while it hands spec 00 that request.
        self.attested: dict[str, int] = {}

    def read(self, peer: str, key: str) -> Any:
        store = self.ledger.store
        if key in ("head_hash", "head_seq"):
            head = store.head(peer)
            if head is None:
                return None
            return head.hash.hex() if key == "head_hash" else head.seq
        if key == "available":
            return 0 if store.head(peer) is None else store.state(peer).available()
        if key == "held_requests":
            return store.witnessed_requests(peer)
        if key == "balance":
            if store.head(peer) is None:
                return 0
            pending = sum(amount for _session, amount in store.witnessed_pending(peer))
            return max(0, store.state(peer).available() - pending)
        if key in ("attested_available", "attested_balance"):
            return self._attested(peer, key)
        if key == "trust":
            return self.ledger.trust(peer, self.now_ms)
        if key == "trust_milli":
            return round(self.ledger.trust(peer, self.now_ms) * 1000)
        if key == "attested_duration_ms":  # ``peer`` is a session id here: spec 02 holds a settlement to it
            try:
                session_id = bytes.fromhex(peer)
            except ValueError:
                return None
            return witnessed_duration_ms(store, self.ledger.me, session_id)
        if key in SESSION_KEYS:  # ``peer`` is a session id: spec 02's claim reads the lock and the attestation
            try:
                return session_facts(store, self.ledger.me, bytes.fromhex(peer), key)
            except ValueError:
                return None
        return self._read_health(peer, key)

    def _read_health(self, peer: str, key: str) -> Any:
        """What specs 04 and 05 read: the genesis hash held, the last health check, the suspicion."""
        store = self.ledger.store
        if key == "genesis_hash":
            genesis = store.block(peer, 0)
            return None if genesis is None else genesis.hash.hex()
        if key == "last_health_check_at":
            last = last_check_ms(store, peer)
            return None if last is None else last / 1000.0
        if key == "suspicion":
            return self.suspicion(peer)
        return None

    def _attested(self, peer: str, key: str) -> int | None:
        value = self.attested.get(peer)
        if key == "attested_available":
            return value
        if value is None:
            return 0
        pending = sum(amount for _session, amount in self.ledger.store.witnessed_pending(peer))
        return max(0, value - pending)

    def suspicion(self, peer: str, extra: tuple[Check, ...] = ()) -> float:
        """``peer``'s suspicion now as this node sees it (with ``extra`` checks not recorded yet)."""
        scores: list[dict[str, float]] = []

        def credibility(author: str) -> float:  # the trust graph is computed once, on the first author asked
            if not scores:
                scores.append(self.ledger.trust_model(self.now_ms).trust_all(self.ledger.me, self.now_ms))
            return scores[0].get(author, 0.0)

        return suspicion_of(self.ledger.store, peer, self.now_ms, credibility, extra)

    def chain_head(self) -> str:
        head = self.ledger.store.head(self.ledger.me)
        return "" if head is None else head.hash.hex()

    def chain_segment(self, from_hash: str) -> list[dict[str, Any]]:
        blocks = self.ledger.store.blocks(self.ledger.me)
        if from_hash == "":  # spec 04 asks for the whole chain from sequence 0
            return [segment_entry(b) for b in blocks]
        for index, block in enumerate(blocks):
            if block.hash.hex() == from_hash:
                return [segment_entry(b) for b in blocks[index:]]
        return []

    def verify_segment(self, peer: str, segment: list[dict[str, Any]]) -> bool:
        previous: Block | None = None
        for entry in segment:
            try:
                block = Block.decode(bytes.fromhex(str(entry.get("block", ""))))
            except (InvalidBlockError, ValueError):
                return False
            if block.owner != peer or block.hash.hex() != entry.get("hash"):
                return False
            if previous is not None and (block.seq != previous.seq + 1 or block.prev != previous.hash):
                return False
            previous = block
        return bool(segment)


def segment_entry(block: Block) -> dict[str, Any]:
    """A block as a spec sees it in a chain segment: its hash, and its wire bytes to verify."""
    return {"hash": block.hash.hex(), "seq": block.seq, "block": block.encode().hex()}


#: Which actor of spec 00 appends each block it declares.
BLOCK_AUTHORS = {
    "BALANCE_LOCK": "Consumer",
    "BALANCE_TOPUP": "Consumer",
    "WITNESS_COMMITMENT": "Witness",
    "DOUBLE_LOCK_ACCUSATION": "Witness",
    "BALANCE_UNLOCK": "Consumer",
    "PAYMENT_RECEIVED": "Provider",
    "ATTESTATION": "Witness",
    "MISUSE_VERDICT": "Witness",
    "STATE_ATTESTATION": "Requester",
    "AUDIT_RESULT": "Auditor",
    "CHECK_RESULT": "Cabal",
}

#: The accusation reason a witness writes with a double-lock proof.
DOUBLE_LOCK_REASON = "double_lock"


def block_for(
    name: str, store: dict[str, Any], session: str, chains: ChainStore
) -> tuple[BlockKind, dict[str, Any]] | None:
    """The ledger block an ``APPEND(chain, NAME)`` of spec 00 to 05 stands for, or None for one not kept."""
    if name == "STATE_ATTESTATION":
        return BlockKind.STATE_ATTESTATION, state_attestation_payload(store, session)
    if name == "AUDIT_RESULT":
        result = {"subject": store["subject"], "session_id": bytes.fromhex(session), "result": store["result"]}
        return BlockKind.AUDIT_RESULT, {**result, "result_hash": bytes.fromhex(store["result_hash"])}
    if name == "CHECK_RESULT":
        return BlockKind.CHECK_RESULT, check_result_payload(store, session)
    if name == "ATTESTATION":
        return BlockKind.VERIFICATION, verification_payload(store, session)
    if name == "MISUSE_VERDICT":
        return BlockKind.VERIFICATION, misuse_verdict_payload(store, session)
    if name == "BALANCE_LOCK":
        return BlockKind.ESCROW_LOCK, {"lock": store["lock_result"]}
    if name == "BALANCE_TOPUP":
        return BlockKind.ESCROW_TOPUP, {"topup": store["topup_result"]}
    if name == "WITNESS_COMMITMENT":
        payload = {
            "session_id": bytes.fromhex(session),
            "lock": bytes.fromhex(store["lock_result_hash"]),
            "consumer": store["consumer"],
            "provider": store["provider"],
            "amount": store["amount"],
        }
        return BlockKind.WITNESS_COMMITMENT, payload
    if name == "DOUBLE_LOCK_ACCUSATION":
        proof = store["double_lock_proof"]
        return BlockKind.ACCUSATION, {"subject": store["consumer"], "reason": DOUBLE_LOCK_REASON, "proof": proof}
    if name == "BALANCE_UNLOCK":
        return BlockKind.ESCROW_SETTLE, {"settlement": store["final_settlement"]}
    if name == "PAYMENT_RECEIVED":
        final = store["final_settlement"]
        lock = lock_evidence(chains, final["settlement"]["consumer"], bytes.fromhex(session))
        if lock is None:
            raise LedgerError(f"the lock of session {session[:16]} is not on the consumer's chain as held here")
        return BlockKind.ESCROW_PAYMENT, {"lock": lock, "settlement": final}
    return None


def state_attestation_payload(store: dict[str, Any], session: str) -> dict[str, Any]:
    """Spec 03's requester's record: the agreed value and the agreeing witnesses' signed answers."""
    answers = [{"statement": a["answer"], "signature": a["signature"]} for a in store["attestation"]]
    return {
        "session_id": bytes.fromhex(session),
        "subject": store["subject"],
        "query": store["query"],
        "value": store["value"],
        "confidence": store["confidence"],
        "answers": answers,
    }


def check_result_payload(store: dict[str, Any], session: str) -> dict[str, Any]:
    """A cabal member's ``check_result`` block from its spec 05 store (integer ms and thousandths on chain)."""
    return {
        "subject": store["subject"],
        "session_id": bytes.fromhex(session),
        "checked_at_ms": int(store["checked_at"] * 1000),
        "clean": bool(store["clean"]),
        "audit_hash": bytes.fromhex(store["audit_hash"]),
        "suspicion_milli": round(store["suspicion"] * 1000),
        "votes": [dict(v) for v in store["votes"]],
    }


def lock_evidence(chains: ChainStore, consumer: str, session_id: bytes) -> Any:
    """The lock evidence of ``session_id`` on ``consumer``'s chain as held here (open or settled), or None."""
    state = chains.state(consumer)
    if session_id in state.locks:
        return state.locks[session_id].evidence
    if session_id in state.settled:
        return state.settled[session_id][0]
    return None


def encode_envelope(envelope: Envelope) -> bytes:
    return canonical_bytes(
        {
            "type": envelope.type,
            "session": envelope.session,
            "sender": envelope.sender,
            "recipient": envelope.recipient,
            "payload": envelope.payload,
            "signature": envelope.signature,
        }
    )


def decode_envelope(data: bytes) -> Envelope:
    if len(data) > MAX_ENVELOPE_BYTES:
        raise EncodingError(f"envelope of {len(data)} bytes exceeds {MAX_ENVELOPE_BYTES}")
    try:
        raw = json.loads(data)
        envelope = Envelope(
            str(raw["type"]), str(raw["session"]), str(raw["sender"]), str(raw["recipient"]), dict(raw["payload"]),
            None if raw["signature"] is None else str(raw["signature"]),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise EncodingError(f"malformed envelope: {exc}") from exc
    return envelope
