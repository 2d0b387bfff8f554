"""Spec 03 (state query) between seven node processes on loopback over the udp transport.

A node with a fresh chain is attested with HIGH confidence by the threshold; a node nobody has seen is
"unknown", never zero; with two witnesses lying (the ``ledger_test_lie_state_answers`` test hook) the
honest three still attest, and each lie comes back as a false-answer proof that verifies in this test
process with nothing but the proof. Last, an escrow lock whose five witnesses include the two liars
locks: each witness judged the consumer's balance by a spec 03 attestation, not by its own copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from omerta_ledger_omt.ledger.chainstate import Parameters
from omerta_ledger_omt.ledger.encoding import decode
from omerta_ledger_omt.ledger.proofs import verified_proof
from omerta_ledger_omt.ledger.state_query import Answer, FalseAnswerProof

from omerta_core.identity import Identity

from .nodes import LedgerNode, sync_everyone

pytestmark = pytest.mark.timeout(900)

NAMES = ["subject", "asker", "w1", "w2", "w3", "liar1", "liar2"]
LIARS = ["liar1", "liar2"]
FUNDS = 1000


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, LedgerNode], dict[str, str]]]:
    root: Path = tmp_path_factory.mktemp("state-query")
    cluster = {name: LedgerNode(root / name) for name in NAMES}
    try:
        ids = {name: node.peer_id for name, node in cluster.items()}
        config = {"authorities": [ids["w1"]]}
        cluster["w1"].start_with(config)
        for name in NAMES:
            if name != "w1":
                lie = ["plugins.omt.ledger_test_lie_state_answers=true"] if name in LIARS else []
                cluster[name].start_with({**config, "peers": [cluster["w1"].address()], "sets": lie})
        ports = {name: node.port for name, node in cluster.items()}
        for name, node in cluster.items():
            for other, port in ports.items():
                if other != name:
                    node.call("udp.add_peer", {"peer": ids[other], "endpoints": [f"127.0.0.1:{port}"]})
        cluster["w1"].call("ledger.run", {"name": "mint", "params": {"to": ids["subject"], "amount": FUNDS}})
        sync_everyone(cluster, ids)
        yield cluster, ids
    finally:
        for node in cluster.values():
            node.stop()


def query(node: LedgerNode, peer: str, what: str, witnesses: list[str], confidence: str) -> dict[str, object]:
    params = {"peer": peer, "what": what, "witnesses": witnesses, "min_confidence": confidence}
    return dict(node.call("ledger.query", params, timeout=120))


def test_a_fresh_chain_is_attested_with_high_confidence_by_the_threshold(
    nodes: tuple[dict[str, LedgerNode], dict[str, str]],
) -> None:
    cluster, ids = nodes
    honest = [ids[w] for w in ("w1", "w2", "w3")]
    result = query(cluster["asker"], ids["subject"], "balance", honest, "HIGH")
    assert result["state"] == "ATTESTED" and result["value"] == FUNDS and result["confidence"] == "HIGH", result
    assert all(a["agreed"] and a["confidence"] == "HIGH" for a in result["answers"]), result  # type: ignore[attr-defined]
    length = query(cluster["asker"], ids["subject"], "chain_length", honest, "HIGH")
    assert length["state"] == "ATTESTED" and length["value"] == 2, length  # identity block and the agreement
    # without a list the asker picks the five peers it trusts most (here every other chain it holds)
    chosen = cluster["asker"].call("ledger.query", {"peer": ids["subject"], "what": "age"}, timeout=120)
    assert sorted(chosen["witnesses"]) == sorted(ids[n] for n in NAMES if n not in ("asker", "subject")), chosen
    # the asker's chain records the attestation with the witnesses' signed answers
    blocks = cluster["asker"].call("ledger.show", {})["blocks"]
    [attestation] = [b for b in blocks if b["kind"] == "state_attestation" and b["payload"]["query"] == "balance"]
    assert attestation["payload"]["value"] == FUNDS and attestation["payload"]["subject"] == ids["subject"]
    answers = [a for a in attestation["payload"]["answers"]]
    assert len(answers) == 3 and all(Answer.from_wire(a).signed() for a in answers)


def test_a_node_nobody_has_seen_is_unknown_not_zero(nodes: tuple[dict[str, LedgerNode], dict[str, str]]) -> None:
    cluster, ids = nodes
    stranger = str(Identity.from_seed(hashlib.sha256(b"never started").digest()).peer_id)
    result = query(cluster["asker"], stranger, "balance", [ids[w] for w in ("w1", "w2", "w3")], "LOW")
    assert result["state"] == "ATTESTED" and result["value"] == "unknown" and result["confidence"] == "LOW", result
    assert {a["value"] for a in result["answers"]} == {"unknown"}, result  # type: ignore[attr-defined]
    # asking for confidence about a node nobody knows fails rather than answering zero
    confident = query(cluster["asker"], stranger, "balance", [ids[w] for w in ("w1", "w2", "w3")], "HIGH")
    assert confident["state"] == "FAILED" and confident["value"] is None, confident


def test_two_lying_witnesses_are_outvoted_and_proven_false(
    nodes: tuple[dict[str, LedgerNode], dict[str, str]],
) -> None:
    cluster, ids = nodes
    witnesses = [ids[w] for w in ("w1", "w2", "w3", *LIARS)]
    result = query(cluster["asker"], ids["subject"], "balance", witnesses, "HIGH")
    assert result["state"] == "ATTESTED" and result["value"] == FUNDS, result
    dissent = {a["witness"] for a in result["answers"] if not a["agreed"]}  # type: ignore[attr-defined]
    assert dissent == {ids[w] for w in LIARS}, result
    proven = result["false_answers"]
    assert {p["witness"] for p in proven} == dissent, result  # type: ignore[attr-defined]
    params = Parameters(mint_authorities=frozenset({ids["w1"]}))
    for entry in proven:  # type: ignore[attr-defined]
        proof = verified_proof(decode(bytes.fromhex(entry["proof"])), params)  # offline: the proof alone
        assert isinstance(proof, FalseAnswerProof) and proof.subject == entry["witness"]
    accusations = [b for b in cluster["asker"].call("ledger.show", {})["blocks"] if b["kind"] == "accusation"]
    assert {b["payload"]["subject"] for b in accusations} == dissent


def test_an_escrow_lock_judges_the_balance_by_a_state_query_among_its_witnesses(
    nodes: tuple[dict[str, LedgerNode], dict[str, str]],
) -> None:
    cluster, ids = nodes
    sync_everyone(cluster, ids)  # everyone holds the asker's chain (the provider's checkpoint)
    locked = cluster["subject"].call("ledger.lock", {"provider": ids["asker"], "amount": 400}, timeout=180)
    assert locked["state"] == "LOCKED", locked
    assert set(locked["witnesses"]) == {ids[w] for w in ("w1", "w2", "w3", *LIARS)}, locked
    for name in ("w1", "w2", "w3", *LIARS):
        blocks = cluster[name].call("ledger.show", {})["blocks"]
        attested = [b["payload"] for b in blocks if b["kind"] == "state_attestation"]
        assert any(p["subject"] == ids["subject"] and p["value"] == FUNDS for p in attested), (name, attested)
