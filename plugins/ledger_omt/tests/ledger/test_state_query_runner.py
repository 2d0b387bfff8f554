"""Spec 03 on the transaction runner between in-process ledgers: threshold agreement, "unknown" for a subject
nobody holds, liars outvoted and proven false, and a witness that never synced the subject answering LOW.

Node processes over the real transport run the same in ``test_state_query_nodes.py``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from omerta_ledger_omt.ledger.blocks import BlockKind
from omerta_ledger_omt.ledger.encoding import decode
from omerta_ledger_omt.ledger.errors import InvalidProofError
from omerta_ledger_omt.ledger.proofs import verified_proof
from omerta_ledger_omt.ledger.state_query import FalseAnswerProof, attested_answers

from .conftest import Network, identity
from .runners import running

WITNESSES = ["w1", "w2", "w3", "w4", "w5"]


def ask(net: Network, what: str, subject: str, liars: tuple[str, ...] = (), **options: Any) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async with running(net, **options) as nodes:
            for name in liars:
                nodes[name].engine.query_view.lie = True
            witnesses = [net.peer(w) for w in WITNESSES]
            return await nodes["provider"].query(subject, what, witnesses, "HIGH", timeout=60)

    return asyncio.run(run())


def test_the_threshold_attests_and_two_liars_are_proven_false(network: Network) -> None:
    net = network
    net.fund("consumer", 1000)
    net.sync()
    result = ask(net, "balance", net.peer("consumer"), liars=("w4", "w5"))
    assert result["state"] == "ATTESTED" and result["value"] == 1000 and result["confidence"] == "HIGH", result
    liars = {net.peer("w4"), net.peer("w5")}
    assert {a["witness"] for a in result["answers"] if not a["agreed"]} == liars
    assert {p["witness"] for p in result["false_answers"]} == liars
    for proven in result["false_answers"]:
        proof = verified_proof(decode(bytes.fromhex(proven["proof"])), net.params)
        assert isinstance(proof, FalseAnswerProof)
    provider = net["provider"]
    kinds = [b.kind for b in provider.store.blocks(provider.me)]
    assert kinds.count(BlockKind.STATE_ATTESTATION) == 1 and kinds.count(BlockKind.ACCUSATION) == 2
    # the accusations' proofs are held, so the liars' trust falls wherever the provider's chain arrives
    assert all(provider.store.proofs(liar) for liar in liars)
    # the attestation's signed answers are the honest three; held against the chain they are not false
    [block] = [b for b in provider.store.blocks(provider.me) if b.kind == BlockKind.STATE_ATTESTATION]
    answers = attested_answers(block)
    assert {a.witness for a in answers} == {net.peer(w) for w in ("w1", "w2", "w3")}
    chain = tuple(provider.store.blocks(net.peer("consumer")))
    for answer in answers:
        assert answer.signed()
        with pytest.raises(InvalidProofError, match="not false"):
            FalseAnswerProof(answer, chain).verify(net.params)


def test_a_subject_nobody_holds_is_unknown_and_never_zero(network: Network) -> None:
    net = network
    stranger = str(identity("stranger").peer_id)
    result = ask(net, "chain_length", stranger)
    assert result["state"] == "FAILED", result  # nobody can answer it with HIGH confidence
    assert {a["value"] for a in result["answers"]} == {"unknown"}
    assert {a["confidence"] for a in result["answers"]} == {"LOW"}


def test_witnesses_that_never_synced_the_subject_answer_low(network: Network) -> None:
    net = network
    net.fund("consumer", 1000)
    net.sync()
    result = ask(net, "balance", net.peer("consumer"), catch_up=None)
    assert result["state"] == "FAILED" and result["failure_reason"] == "disagreement", result
    assert {(a["value"], a["confidence"]) for a in result["answers"]} == {(1000, "LOW")}
