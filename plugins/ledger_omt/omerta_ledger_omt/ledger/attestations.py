"""What transaction 01 (cabal attestation) reads from and writes to the ledger, and its VM probe messages.

* :func:`find_lock` finds an open escrow lock by session id on any chain held here, and
  :func:`lock_summary` is the ``lock_result`` both the provider and the witnesses build from it,
  so the witnesses' ``lock_result_hash`` matches the provider's ``HASH(lock_result)``.
* :func:`committed_consumer` names the consumer of a session this node committed to witness
  (its own ``witness_commitment`` block), so a witness that has not synced the lock knows whom to ask.
* :func:`verification_payload` is the ``verification`` block a witness writes for spec 01's
  ``ATTESTATION``, :func:`misuse_verdict_payload` the one it writes for a ``MISUSE_VERDICT``;
  :func:`session_end_payload` the ``vm_session`` end block a party writes when a valid attestation
  reaches it; :func:`attested_duration_ms` reads that block back for settlement, and
  :func:`witnessed_duration_ms` a witness's own attested duration, which spec 02 holds a settlement to.
* A witness asks the provider whether the session's VM runs and the consumer whether it is
  connected (``probe``) on the transport channel ``ledger.omt.probe``; the answer is what the node
  knows from its own records of the session. Touches nothing (reads the chain store it is given).
"""

from __future__ import annotations

import json
from typing import Any

from omerta_ledger_omt.ledger.blocks import BlockKind
from omerta_ledger_omt.ledger.chainstate import MISUSE_VERDICT_DETAILS, EscrowLock
from omerta_ledger_omt.ledger.errors import EncodingError
from omerta_ledger_omt.ledger.store import ChainStore
from omerta_ledger_omt.omt.runtime.values import canonical_bytes

#: What a probe asks about: the provider's VM or the consumer's connection to it.
PROBE_SUBJECTS = frozenset({"vm", "consumer"})

#: Largest probe message accepted; a probe is a few short fields.
MAX_PROBE_BYTES = 1024

#: The termination reason of spec 01 under which the witnesses found no reachable VM.
UNREACHABLE = "VM_UNREACHABLE"


def find_lock(store: ChainStore, session_id: bytes) -> EscrowLock | None:
    """The open escrow lock of ``session_id`` on any chain held here, or None."""
    for owner in store.owners():
        lock = store.state(owner).locks.get(session_id)
        if lock is not None:
            return lock
    return None


def lock_summary(lock: EscrowLock) -> dict[str, Any]:
    """The ``lock_result`` spec 01 starts from: the witness-signed lock as every chain replays it."""
    return {
        "session_id": lock.session_id.hex(),
        "lock": lock.lock_hash.hex(),
        "consumer": lock.consumer,
        "provider": lock.provider,
        "witnesses": list(lock.witnesses),
    }


def committed_consumer(store: ChainStore, me: str, session_id: bytes) -> str | None:
    """The consumer of ``session_id`` named by this node's own witness commitment, or None."""
    for block in store.blocks(me):
        if block.kind == BlockKind.WITNESS_COMMITMENT and block.payload["session_id"] == session_id:
            return str(block.payload["consumer"])
    return None


def duration_ms(seconds: Any) -> int:
    """Spec 01's duration (seconds, a number) in the ledger's integer milliseconds."""
    return max(0, round(float(seconds or 0) * 1000))


def verification_payload(store: dict[str, Any], session: str) -> dict[str, Any]:
    """The ``verification`` block a witness writes for spec 01's ``ATTESTATION``."""
    attestation = store["final_attestation"]["attestation"]
    reason = str(attestation["termination_reason"])
    attested = duration_ms(attestation["duration"])
    return {
        "subject": store["provider"],
        "session_id": bytes.fromhex(session),
        "passed": reason != UNREACHABLE,
        "detail": f"{reason} duration_ms={attested}",
        "duration_ms": attested,
    }


def misuse_verdict_payload(store: dict[str, Any], session: str) -> dict[str, Any]:
    """The ``verification`` block a witness writes for spec 01's ``MISUSE_VERDICT``.

    Guilty: a failed verification of the consumer. Acquitted: a failed verification of the accuser,
    whose accusation did not hold, so a false accusation costs the accuser trust (docs/ledger.md §5).
    """
    guilty = bool(store["guilty"])
    return {
        "subject": store["accused"] if guilty else store["accuser"],
        "session_id": bytes.fromhex(session),
        "passed": False,
        "detail": f"{MISUSE_VERDICT_DETAILS[0 if guilty else 1]} evidence={store['evidence_hash']}",
    }


def witnessed_duration_ms(store: ChainStore, me: str, session_id: bytes) -> int | None:
    """The duration of ``session_id`` this witness attested (its own ``verification`` block), or None."""
    for block in reversed(store.blocks(me)):
        payload = block.payload
        if block.kind == BlockKind.VERIFICATION and payload["session_id"] == session_id and "duration_ms" in payload:
            return int(payload["duration_ms"])
    return None


def session_end_payload(store: dict[str, Any], session: str, role: str) -> dict[str, Any]:
    """The ``vm_session`` end block of a consumer or provider holding a valid attestation."""
    attestation = store["final_attestation"]["attestation"]
    counterparty = attestation["provider"] if role == "consumer" else attestation["consumer"]
    return {
        "session_id": bytes.fromhex(session),
        "counterparty": counterparty,
        "role": role,
        "event": "end",
        "duration_ms": duration_ms(attestation["duration"]),
        "reason": str(attestation["termination_reason"]),
    }


def attested_duration_ms(store: ChainStore, me: str, session_id: bytes) -> int | None:
    """The attested duration of ``session_id`` from this node's own ``vm_session`` end block, or None."""
    for block in reversed(store.blocks(me)):
        payload = block.payload
        if block.kind == BlockKind.VM_SESSION and payload["session_id"] == session_id and payload["event"] == "end":
            return int(payload["duration_ms"])
    return None


def encode_probe(session: str, subject: str, nonce: int, answer: bool | None = None) -> bytes:
    """A probe (``answer`` None) or its answer."""
    return canonical_bytes({"session": session, "subject": subject, "nonce": nonce, "answer": answer})


def decode_probe(data: bytes) -> tuple[str, str, int, bool | None]:
    if len(data) > MAX_PROBE_BYTES:
        raise EncodingError(f"probe of {len(data)} bytes exceeds {MAX_PROBE_BYTES}")
    try:
        raw = json.loads(data)
        session, subject, nonce, answer = raw["session"], raw["subject"], raw["nonce"], raw["answer"]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise EncodingError(f"malformed probe: {exc}") from exc
    if not isinstance(session, str) or not isinstance(subject, str) or subject not in PROBE_SUBJECTS:
        raise EncodingError("malformed probe")
    if type(nonce) is not int:
        raise EncodingError("malformed probe")
    if answer is not None and not isinstance(answer, bool):
        raise EncodingError("malformed probe answer")
    return session, subject, nonce, answer
