"""The pure parts of transactions 03 to 05: state answers and their agreement, chain audits with offline proofs,
and the suspicion that sets when a health check is due."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from omerta_ledger_omt.ledger.audit import Discrepancy, audit_chain, verify_finding
from omerta_ledger_omt.ledger.blocks import Block, BlockKind
from omerta_ledger_omt.ledger.chainstate import ChainState, Parameters
from omerta_ledger_omt.ledger.errors import InvalidProofError
from omerta_ledger_omt.ledger.local import LocalLedger
from omerta_ledger_omt.ledger.proofs import ChainRuleProof, proof_from_wire
from omerta_ledger_omt.ledger.state_query import (
    UNKNOWN,
    Answer,
    Confidence,
    FalseAnswerProof,
    agree,
    answer,
    confidence,
    false_answer_from_wire,
)
from omerta_ledger_omt.ledger.store import ChainStore
from omerta_ledger_omt.ledger.suspicion import (
    BASE_INTERVAL_DAYS,
    MS_PER_DAY,
    SUSPICION_CAP,
    SuspicionEvent,
    due,
    interval_ms,
    suspicion,
)
from omerta_ledger_omt.omt.runtime.values import canonical_bytes

from omerta_core import identity as identity_mod
from omerta_core.identity import Identity

from .conftest import DAY_MS, NOW_MS, START_MS, Network, identity

SESSION = "ab" * 32
WITNESSES = ["w1", "w2", "w3", "w4", "w5"]


def wire_chain(ledger: LocalLedger, owner: str) -> list[dict]:
    return [b.to_wire() for b in ledger.store.blocks(owner)]


# -- transaction 03: state query -------------------------------------------------------------------


def test_confidence_follows_how_recently_the_witness_synced() -> None:
    assert confidence(NOW_MS - 3_600_000, NOW_MS) == Confidence.HIGH
    assert confidence(NOW_MS - 3 * DAY_MS, NOW_MS) == Confidence.MEDIUM
    assert confidence(NOW_MS - 30 * DAY_MS, NOW_MS) == Confidence.LOW
    assert confidence(None, NOW_MS) == Confidence.LOW


def test_honest_threshold_wins_over_two_liars_whose_answers_are_provable(network: Network) -> None:
    net = network
    net.fund("consumer", 700)
    net.sync()
    subject = net.peer("consumer")
    state = net["w1"].state(subject)
    assert state.available() == 700
    ids = {name: identity(name) for name in WITNESSES}
    answers = [
        answer(ids[n], SESSION, subject, "balance", net[n].state(subject), NOW_MS - 60_000, NOW_MS)
        for n in WITNESSES[:3]
    ]
    for liar in WITNESSES[3:]:  # two witnesses say the consumer has more than it has
        honest = answer(ids[liar], SESSION, subject, "balance", net[liar].state(subject), NOW_MS - 60_000, NOW_MS)
        answers.append(resigned(honest, ids[liar], 5000))
    listed = [str(ids[n].peer_id) for n in WITNESSES]
    result = agree(answers, 3, listed, Confidence.HIGH, session_id=SESSION, subject=subject, query="balance")
    assert result.agreed and result.value == 700 and result.confidence == Confidence.HIGH
    assert {a.witness for a in result.dissenters} == {str(ids[n].peer_id) for n in WITNESSES[3:]}
    # each liar's signed answer plus the chain up to the head it named is a proof a third node checks alone
    chain = net["w1"].store.blocks(subject)
    for lie in result.dissenters:
        proof = FalseAnswerProof(lie, tuple(chain[: lie.statement["head_seq"] + 1]))
        again = false_answer_from_wire(proof.to_wire())
        again.verify(net.params)
        assert again.subject == lie.witness
    honest = FalseAnswerProof(result.supporters[0], tuple(chain))
    with pytest.raises(InvalidProofError, match="not false"):
        honest.verify(net.params)


def test_an_unknown_subject_is_unknown_not_zero(network: Network) -> None:
    stranger = str(identity("stranger").peer_id)
    ids = [identity(n) for n in WITNESSES]
    answers = [answer(i, SESSION, stranger, "balance", None, None, NOW_MS) for i in ids]
    result = agree(answers, 3, [str(i.peer_id) for i in ids], session_id=SESSION, subject=stranger, query="balance")
    assert result.agreed and result.value == UNKNOWN and result.value != 0
    # escrow asks for HIGH confidence: answers from witnesses that never synced the subject do not count
    strict = agree(
        answers, 3, [str(i.peer_id) for i in ids], Confidence.HIGH, session_id=SESSION, subject=stranger,
        query="balance",
    )  # fmt: skip
    assert not strict.agreed


def test_answers_to_another_question_or_from_outsiders_do_not_count(network: Network) -> None:
    net = network
    net.fund("consumer", 10)
    net.sync()
    subject, ids = net.peer("consumer"), [identity(n) for n in WITNESSES]
    state = net["w1"].state(subject)
    answers = [answer(i, SESSION, subject, "chain_length", state, NOW_MS, NOW_MS) for i in ids]
    result = agree(answers, 3, [str(i.peer_id) for i in ids[:2]], session_id=SESSION, subject=subject,
                   query="chain_length")  # fmt: skip
    assert not result.agreed  # only two listed witnesses
    other = agree(answers, 3, [str(i.peer_id) for i in ids], session_id=SESSION, subject=subject, query="balance")
    assert not other.agreed


def resigned(original: Answer, signer: Identity, value: object) -> Answer:
    """``original`` with another value, signed again by ``signer``: a witness that lies."""
    statement = {**original.statement, "value": value}
    return Answer(statement, signer.sign(canonical_bytes(statement)).hex())


# -- transaction 04: state audit -------------------------------------------------------------------


def test_an_honest_chain_audits_clean(network: Network) -> None:
    net = network
    net.fund("consumer", 500)
    proposal = net["consumer"].transfer(net.peer("provider"), 100, START_MS + 2 * DAY_MS)
    net["provider"].agree(proposal, START_MS + 3 * DAY_MS)
    net.sync()
    subject = net.peer("consumer")
    counterparties = {net.peer("provider"): net["w1"].state(net.peer("provider"))}
    result = audit_chain(subject, wire_chain(net["w1"], subject), net.params, held=net["w2"].store.blocks(subject),
                         counterparties=counterparties)  # fmt: skip
    assert result.clean, result.findings
    assert (result.balance, result.head_seq, result.verified_value_out) == (400, 2, 0)
    assert result.hash == audit_chain(subject, wire_chain(net["w1"], subject), net.params).hash


def test_an_edited_block_is_found(network: Network) -> None:
    net = network
    net.fund("consumer", 500)
    net.sync()
    served = wire_chain(net["consumer"], net.peer("consumer"))
    served[1]["payload"] = {**served[1]["payload"], "proposal": {**served[1]["payload"]["proposal"]}}
    served[1]["time_ms"] += 1  # what an edit of the SQLite file looks like: the signature no longer matches
    result = audit_chain(net.peer("consumer"), served, net.params)
    [finding] = result.findings
    assert finding.kind == Discrepancy.SIGNATURE_INVALID and finding.seq == 1 and "bad signature" in finding.detail


def test_a_fork_is_found_and_its_proof_verifies_alone(tmp_path: Path, network: Network) -> None:
    net = network
    net.fund("consumer", 500)
    net.sync()
    subject = net.peer("consumer")
    held = net["w1"].store.blocks(subject)
    # the consumer re-signs a different block 2 and serves that chain to the auditor
    me = identity("consumer")
    other = Block.create(me, 2, held[1].hash, BlockKind.BURN, held[1].time_ms + 1, {"amount": 5})
    net["consumer"].burn(7, START_MS + 5 * DAY_MS)
    served = [b.to_wire() for b in held[:2]] + [other.to_wire()]
    result = audit_chain(subject, served, net.params, held=net["consumer"].store.blocks(subject))
    [finding] = result.findings
    assert finding.kind == Discrepancy.CHAIN_FORK and finding.against == subject
    proof = verify_finding(finding.to_wire(), Parameters())  # a third node, no chain held
    assert proof.subject == subject


def test_a_double_spend_is_found_with_a_chain_rule_proof(network: Network) -> None:
    net = network
    net.fund("consumer", 100)
    net.sync()
    chain = net["consumer"].store.blocks(net.peer("consumer"))
    me = identity("consumer")
    overspend = Block.create(me, len(chain), chain[-1].hash, BlockKind.BURN, chain[-1].time_ms + 1, {"amount": 150})
    served = [b.to_wire() for b in chain] + [overspend.to_wire()]
    result = audit_chain(net.peer("consumer"), served, net.params)
    [finding] = result.findings
    assert finding.kind == Discrepancy.DOUBLE_SPEND and isinstance(finding.proof, ChainRuleProof)
    verify_finding(finding.to_wire(), net.params)


def test_a_false_high_confidence_answer_is_found_by_the_audit(network: Network) -> None:
    net = network
    net.fund("consumer", 300)
    net.sync()
    subject, liar = net.peer("consumer"), identity("w4")
    lie = resigned(answer(liar, SESSION, subject, "balance", net["w4"].state(subject), NOW_MS, NOW_MS), liar, 9)
    result = audit_chain(subject, wire_chain(net["w1"], subject), net.params, answers=[lie])
    [finding] = result.findings
    assert finding.kind == Discrepancy.ATTESTATION_FALSE and finding.against == str(liar.peer_id)
    verify_finding(finding.to_wire(), net.params)  # a third node knows the network's parameters, no chain
    # a LOW-confidence answer is not held against its author
    stale = answer(liar, SESSION, subject, "balance", net["w4"].state(subject), NOW_MS - 30 * DAY_MS, NOW_MS)
    low = resigned(stale, liar, 9)
    assert audit_chain(subject, wire_chain(net["w1"], subject), net.params, answers=[low]).clean


def test_a_transfer_the_counterparty_never_agreed_to_is_reported(network: Network) -> None:
    net = network
    net.fund("consumer", 300)
    net["consumer"].transfer(net.peer("provider"), 50, START_MS + 2 * DAY_MS)
    net.sync()
    net["provider"].checkpoint(START_MS + 4 * DAY_MS)  # the provider's chain goes on without agreeing
    net.sync()
    subject = net.peer("consumer")
    counterparties = {net.peer("provider"): net["w1"].state(net.peer("provider"))}
    result = audit_chain(subject, wire_chain(net["w1"], subject), net.params, counterparties=counterparties)
    assert [f.kind for f in result.findings] == [Discrepancy.MISSING_COUNTERPARTY]
    assert result.findings[0].proof is None


# -- transaction 05: suspicion and health checks ---------------------------------------------------


def test_nobody_suspected_is_checked_every_base_interval() -> None:
    assert suspicion([], [], NOW_MS) == 0.0
    assert interval_ms(0.0) == BASE_INTERVAL_DAYS * MS_PER_DAY
    assert not due(NOW_MS - 10 * DAY_MS, 0.0, NOW_MS).due
    assert due(NOW_MS - 31 * DAY_MS, 0.0, NOW_MS).due
    assert due(None, 0.0, NOW_MS).due


def test_suspicion_rises_with_evidence_by_its_proof_and_credibility_and_fades() -> None:
    proven = suspicion([SuspicionEvent("proven", NOW_MS)], [], NOW_MS)
    failed = suspicion([SuspicionEvent("failed_verification", NOW_MS, credibility=0.8)], [], NOW_MS)
    sybil = suspicion([SuspicionEvent("unproven_accusation", NOW_MS, credibility=0.0)] * 50, [], NOW_MS)
    assert proven == pytest.approx(1.0) and failed == pytest.approx(0.4) and sybil == 0.0
    old = suspicion([SuspicionEvent("proven", NOW_MS - 90 * DAY_MS)], [], NOW_MS)
    assert old == pytest.approx(1 / 2.718281828, rel=1e-6)
    assert suspicion([SuspicionEvent("proven", NOW_MS)] * 100, [], NOW_MS) == SUSPICION_CAP
    # a suspected peer is checked sooner: at suspicion 1 after 15 days
    assert not due(NOW_MS - 10 * DAY_MS, proven, NOW_MS).due and due(NOW_MS - 16 * DAY_MS, proven, NOW_MS).due
    # each clean audit after the trouble halves it; one before it does not
    event = SuspicionEvent("proven", NOW_MS - DAY_MS)
    assert suspicion([event], [NOW_MS], NOW_MS) == pytest.approx(suspicion([event], [], NOW_MS) / 2)
    assert suspicion([event], [NOW_MS - 2 * DAY_MS], NOW_MS) == pytest.approx(suspicion([event], [], NOW_MS))
    assert "not due" in due(NOW_MS - DAY_MS, 0.0, NOW_MS).reason()


def test_audit_state_is_a_replay(network: Network) -> None:
    net = network
    net.fund("consumer", 42)
    net.sync()
    subject = net.peer("consumer")
    result = audit_chain(subject, wire_chain(net["w1"], subject), net.params)
    state: ChainState = net["w1"].state(subject)
    assert (result.balance, result.head_hash) == (state.available(), state.head_hash.hex())
    assert isinstance(ChainStore, type)


def test_a_false_answer_proof_is_kept_synced_and_costs_the_witness_trust(tmp_path: Path, network: Network) -> None:
    net = network
    net.fund("consumer", 300)
    # the observer accepted a payment from the witness: it trusts it somewhat
    net.fund("w4", 100)
    proposal = net["w4"].transfer(net.peer("w1"), 50, START_MS + 2 * DAY_MS)
    net["w1"].agree(proposal, START_MS + 2 * DAY_MS)
    net.sync()
    subject, liar = net.peer("consumer"), identity("w4")
    before = net["w1"].trust(str(liar.peer_id), NOW_MS)
    assert before > 0
    lie = resigned(answer(liar, SESSION, subject, "balance", net["w4"].state(subject), NOW_MS, NOW_MS), liar, 9)
    [finding] = audit_chain(subject, wire_chain(net["w1"], subject), net.params, answers=[lie]).findings
    assert finding.proof is not None and net["w1"].store.add_proof(finding.proof)
    assert net["w1"].store.proof_counts() == {str(liar.peer_id): 1}
    assert net["w1"].trust(str(liar.peer_id), NOW_MS) == pytest.approx(before * 0.1)
    # it travels like any proof: parsed back from the store's wire form on another node
    observer = ChainStore(tmp_path / "observer", net.params)
    try:
        [kept] = net["w1"].store.proofs(str(liar.peer_id))
        assert observer.add_proof(kept) and observer.proof_counts() == {str(liar.peer_id): 1}
    finally:
        observer.close()


def test_omerta_ledger_audit_finds_a_block_edited_in_the_sqlite_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    me = identity_mod.load_or_create(state)
    store = ChainStore(state / "plugins" / "omt", Parameters())
    ledger = LocalLedger(me, store)
    ledger.ensure_identity(START_MS)
    other = str(identity("other").peer_id)
    ledger.append(BlockKind.TRUST_ASSERTION, {"subject": other, "score_milli": 100, "reason": "slow"}, START_MS + 1)
    store.close()
    cli = [sys.executable, "-c", "from omerta_core.cli import run; run()", "ledger", "audit", "--state-dir", str(state)]
    clean = subprocess.run(cli, check=False, capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0 and "2 blocks checked" in clean.stdout, clean
    db = sqlite3.connect(state / "plugins" / "omt" / "chains.sqlite3")
    (wire,) = db.execute("SELECT wire FROM blocks WHERE seq = 1").fetchone()
    db.execute("UPDATE blocks SET wire = ? WHERE seq = 1", (wire.replace(b"slow", b"fast"),))
    db.commit()
    db.close()
    edited = subprocess.run([*cli, "--json"], check=False, capture_output=True, text=True, timeout=120)
    assert edited.returncode == 1, edited
    [finding] = json.loads(edited.stdout)["discrepancies"]
    assert finding["kind"] == "signature_invalid" and finding["seq"] == 1 and "bad signature" in finding["detail"]


def test_a_mangled_false_answer_proof_raises_only_its_own_error(network: Network) -> None:
    """Every field of a valid false-answer proof replaced by junk: parsing and checking raise InvalidProofError."""
    net = network
    net.fund("consumer", 300)
    net.sync()
    subject, liar = net.peer("consumer"), identity("w4")
    lie = resigned(answer(liar, SESSION, subject, "balance", net["w4"].state(subject), NOW_MS, NOW_MS), liar, 9)
    wire = FalseAnswerProof(lie, tuple(net["w1"].store.blocks(subject))).to_wire()
    junk: list[object] = [None, 1, -5, "x", [], {}, [1], {"a": 1}, 2**70, True, b"xx"]
    places = [("answer", "statement", key) for key in wire["answer"]["statement"]]
    places += [("answer", "signature"), ("answer", "statement"), ("blocks",), ("kind",), ("answer",)]
    for place in places:
        for value in junk:
            mangled = json.loads(json.dumps(wire, default=lambda b: b.hex()))  # a deep copy
            mangled["blocks"] = [b.to_wire() for b in net["w1"].store.blocks(subject)]
            target = mangled
            for key in place[:-1]:
                target = target[key]
            target[place[-1]] = value
            if target.get(place[-1]) == value:
                continue  # not a change
            with pytest.raises(InvalidProofError):
                proof_from_wire(mangled).verify(net.params)
