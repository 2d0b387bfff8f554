"""Double-lock proofs: two lock requests one consumer signed at one chain head that promise more than it has.

Checked offline from the wire form alone; forged ones are refused with a clear reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from omerta_ledger_omt.ledger.chainstate import Parameters
from omerta_ledger_omt.ledger.errors import InvalidProofError
from omerta_ledger_omt.ledger.proofs import DoubleLockProof, SignedLockRequest, proof_from_wire, verified_proof
from omerta_ledger_omt.ledger.store import ChainStore
from omerta_ledger_omt.omt.runtime.values import canonical_bytes

from omerta_core.identity import Identity

from .conftest import identity

HEAD_HASH = "ab" * 32


def request(consumer: Identity, session: str, amount: int, **overrides: Any) -> dict[str, Any]:
    body = {
        "what": "lock_request",
        "session_id": session * 64,
        "consumer": str(consumer.peer_id),
        "provider": str(identity("provider").peer_id),
        "amount": amount,
        "hourly_rate": 100,
        "head_seq": 4,
        "head_hash": HEAD_HASH,
        "available": 1000,
    }
    return body | overrides


def signed(signer: Identity, body: dict[str, Any]) -> dict[str, Any]:
    return {"request": body, "signature": signer.sign(canonical_bytes(body)).hex()}


def proof_wire(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "double_lock", "requests": [first, second]}


def test_two_requests_at_one_head_beyond_the_balance_prove_a_double_lock(tmp_path: Path) -> None:
    consumer = identity("consumer")
    elsewhere = str(identity("another provider").peer_id)
    second = request(consumer, "2", 600, provider=elsewhere)
    wire = proof_wire(signed(consumer, request(consumer, "1", 600)), signed(consumer, second))
    proof = verified_proof(wire, Parameters())
    assert isinstance(proof, DoubleLockProof)
    assert proof.subject == str(consumer.peer_id)
    assert "600 + 600" in proof.describe()
    # a node that holds no chain at all keeps it, once; its hash does not depend on the order of the requests
    store = ChainStore(tmp_path / "observer", Parameters())
    assert store.add_proof(proof)
    assert not store.add_proof(proof_from_wire(proof_wire(*reversed(wire["requests"]))))
    assert store.proof_counts() == {str(consumer.peer_id): 1}
    store.close()


def reason(wire: Any) -> str:
    with pytest.raises(InvalidProofError) as caught:
        verified_proof(wire, Parameters())
    return str(caught.value)


def test_forged_double_lock_proofs_are_refused_with_a_reason() -> None:
    consumer, mallory = identity("consumer"), identity("mallory")
    first = signed(consumer, request(consumer, "1", 600))
    # a signature by someone else over the consumer's request
    by_mallory = signed(mallory, request(consumer, "2", 600))
    assert "second request has a bad signature" in reason(proof_wire(first, by_mallory))
    # a request altered after signing
    tampered = signed(consumer, request(consumer, "2", 600))
    tampered["request"] = tampered["request"] | {"amount": 900}
    assert "bad signature" in reason(proof_wire(first, tampered))
    # different heads: the consumer's balance may have changed in between
    other_head = signed(consumer, request(consumer, "2", 600, head_hash="cd" * 32))
    assert "different chain heads" in reason(proof_wire(first, other_head))
    other_seq = signed(consumer, request(consumer, "2", 600, head_seq=5))
    assert "different chain heads" in reason(proof_wire(first, other_seq))
    # amounts that together fit the stated balance
    assert "fit the stated balance 1000" in reason(proof_wire(first, signed(consumer, request(consumer, "2", 400))))
    # one session twice, two consumers, malformed parts
    assert "one session" in reason(proof_wire(first, signed(consumer, request(consumer, "1", 500))))
    theirs = signed(mallory, request(mallory, "2", 600))
    assert "two consumers" in reason(proof_wire(first, theirs))
    assert "two requests" in reason({"kind": "double_lock", "requests": [first]})
    assert "unknown field 'extra'" in reason(proof_wire(first, signed(consumer, request(consumer, "2", 600, extra=1))))
    assert "'amount'" in reason(proof_wire(first, signed(consumer, request(consumer, "2", -5))))
    assert "'what'" in reason(proof_wire(first, signed(consumer, request(consumer, "2", 600, what="lock"))))
    assert "{request, signature}" in reason(proof_wire(first, {"request": first["request"]}))


def test_a_retry_of_one_lock_is_not_a_double_lock() -> None:
    """Same provider, amount, head and balance under a new session: the consumer retried a timed-out lock."""
    consumer = identity("consumer")
    first, retry = signed(consumer, request(consumer, "1", 600)), signed(consumer, request(consumer, "2", 600))
    assert "two tries of one lock" in reason(proof_wire(first, retry))
    # change any term and the same pair proves a double lock again
    for override in ({"amount": 601}, {"provider": str(identity("another provider").peer_id)}):
        other = signed(consumer, request(consumer, "2", 600) | override)
        assert isinstance(verified_proof(proof_wire(first, other), Parameters()), DoubleLockProof)


def test_signed_request_round_trips() -> None:
    consumer = identity("consumer")
    wire = signed(consumer, request(consumer, "1", 10))
    parsed = SignedLockRequest.from_wire(wire)
    assert parsed.signed_by_consumer() and parsed.to_wire() == wire
