"""Transactions 04 (state audit) and 05 (health check) through the transaction runners of a network held in
one process: the audit fetches the subject's chain from the subject, asks its counterparties, publishes an
``audit_result`` whose proofs check with the parameters alone; a health check that is not due is refused,
a due one has each cabal member audit the subject and record a ``check_result`` every observer counts."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from omerta_ledger_omt.ledger import views
from omerta_ledger_omt.ledger.blocks import Block, BlockKind
from omerta_ledger_omt.ledger.engine import SPEC_05, load_program
from omerta_ledger_omt.ledger.health import CHECK_THRESHOLD, checks
from omerta_ledger_omt.ledger.state_query import Answer
from omerta_ledger_omt.omt.runtime.values import canonical_bytes

from .conftest import DAY_MS, NOW_MS, Network, identity
from .runners import running

CABAL = ["w1", "w2", "w3"]


def edited_burn(network: Network) -> Block:
    """The consumer burns 10 (everyone syncs it), then edits the burn in its SQLite file without its key."""
    consumer = network["consumer"]
    network.fund("consumer", 1000)
    consumer.burn(10, NOW_MS - 1000)
    network.sync()
    burn = consumer.store.blocks(consumer.me)[-1]
    edited = Block(burn.owner, burn.seq, burn.prev, burn.kind, burn.time_ms, {"amount": 1}, burn.signature)
    db = sqlite3.connect(consumer.store.path)
    try:
        db.execute("UPDATE blocks SET wire = ? WHERE owner = ? AND seq = ?", (edited.encode(), consumer.me, burn.seq))
        db.commit()
    finally:
        db.close()
    return burn


def test_an_audit_between_runners_of_an_honest_chain_finds_nothing_and_is_published(network: Network) -> None:
    network.fund("consumer", 1000)
    network["consumer"].transfer(network.peer("provider"), 100, NOW_MS - 1000)
    network.sync()
    network.ledgers["provider"].agree(network["consumer"].store.blocks(network.peer("consumer"))[-1], NOW_MS - 500)
    network.sync()

    async def scenario() -> dict[str, Any]:
        async with running(network) as nodes:
            return await nodes["w1"].audits.audit(network.peer("consumer"))

    outcome = asyncio.run(scenario())
    assert outcome["state"] == "COMPLETE" and outcome["counterparties"] == [network.peer("provider")]
    assert outcome["confirmations"] == 1, outcome
    result = outcome["result"]
    assert result["answered"] and result["discrepancies"] == [] and result["balance"] == 900, result
    block = Block.decode(bytes.fromhex(outcome["block"]))
    assert block.kind == BlockKind.AUDIT_RESULT and block.owner == network.peer("w1")
    checked = views.verify_audit(network.params, outcome["block"])
    assert checked["subject"] == network.peer("consumer") and checked["discrepancies"] == []


def test_an_edited_store_is_caught_and_the_served_corrupt_proof_checks_offline(
    network: Network, tmp_path: Path
) -> None:
    consumer = network["consumer"]
    burn = edited_burn(network)

    async def scenario() -> dict[str, Any]:
        async with running(network) as nodes:
            return await nodes["w1"].audits.audit(consumer.me)

    outcome = asyncio.run(scenario())
    [finding] = outcome["result"]["discrepancies"]
    assert finding["kind"] == "signature_invalid" and finding["seq"] == burn.seq
    assert finding["against"] == consumer.me and finding["proof"]["kind"] == "served_corrupt"
    # a third party with the parameters only
    checked = views.verify_audit(network.params, outcome["block"])
    [row] = checked["discrepancies"]
    assert row["verified"] and row["against"] == consumer.me and checked["invalid"] == 0
    # and on the command line, from a file, with the parameters of an empty state directory
    published = tmp_path / "audit.hex"
    published.write_text(outcome["block"])
    cli = [sys.executable, "-c", "from omerta_core.cli import run; run()", "ledger", "verify-audit", str(published)]
    cli += ["--params-from", str(tmp_path / "judge"), "--json"]
    done = subprocess.run(cli, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and json.loads(done.stdout)["proven"] == 1, done.stderr
    published.write_text(json.dumps({**outcome["result"], "discrepancies": [{**finding, "proof_cbor": "00"}]}))
    done = subprocess.run(cli[:-1], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1 and "0 proof(s) hold" in done.stdout, (done.stdout, done.stderr)


def test_a_forked_chain_is_caught_with_a_fork_proof(network: Network) -> None:
    consumer = network["consumer"]
    network.fund("consumer", 1000)
    consumer.burn(10, NOW_MS - 1000)
    network.sync()  # w1 holds the burn of 10
    burn = consumer.store.blocks(consumer.me)[-1]
    other = Block.create(identity("consumer"), burn.seq, burn.prev, BlockKind.BURN, burn.time_ms, {"amount": 20})
    db = sqlite3.connect(consumer.store.path)
    db.execute(
        "UPDATE blocks SET wire = ?, hash = ? WHERE owner = ? AND seq = ?",
        (other.encode(), other.hash, consumer.me, burn.seq),
    )
    db.commit()
    db.close()

    async def scenario() -> dict[str, Any]:
        async with running(network) as nodes:
            return await nodes["w1"].audits.audit(consumer.me)

    outcome = asyncio.run(scenario())
    kinds = {f["kind"]: f for f in outcome["result"]["discrepancies"]}
    assert kinds["chain_fork"]["proof"]["kind"] == "fork" and kinds["chain_fork"]["against"] == consumer.me
    assert views.verify_audit(network.params, outcome["block"])["proven"] >= 1


def test_a_health_check_not_due_is_refused_and_a_due_one_updates_every_observer(network: Network) -> None:
    network.fund("consumer", 1000)
    network.sync()
    cabal = [network.peer(n) for n in CABAL]
    provider = network.peer("provider")

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with running(network) as nodes:
            first = await nodes["consumer"].audits.health_check(provider, cabal, timeout=60)
            second = await nodes["consumer"].audits.health_check(provider, cabal, timeout=60)
            return first, second

    first, second = asyncio.run(scenario())
    assert first["state"] == "CHECKED", first
    assert len({r["member"] for r in first["results"]}) >= CHECK_THRESHOLD
    assert all(r["clean"] for r in first["results"]), first
    assert second["state"] == "REFUSED" and second["failure_reason"] == "not_due", second
    for name in CABAL:
        [block] = [b for b in network[name].store.blocks(network.peer(name)) if b.kind == BlockKind.CHECK_RESULT]
        assert block.payload["subject"] == provider and block.payload["clean"]
    network.sync()
    for name in ("w5", "consumer", "authority"):
        [check] = checks(network[name].store, provider)
        assert check.clean and check.checked_at_ms == NOW_MS


def test_check_threshold_is_spec_05s() -> None:
    assert load_program(SPEC_05).parameter("CHECK_THRESHOLD") == CHECK_THRESHOLD


def test_a_double_lock_is_found_by_an_audit_and_its_proof_checks_offline(network: Network) -> None:
    net = network
    net.fund("consumer", 1000)
    others = [name for name in net.ledgers if name != "consumer"]
    for name in others:  # every node gets a verified edge to the consumer, so witnesses will serve it
        net[name].agree(net["consumer"].transfer(net.peer(name), 10, NOW_MS - 10 * DAY_MS), NOW_MS - 10 * DAY_MS)
    net.sync()

    async def scenario() -> dict[str, Any]:
        async with running(net) as nodes:
            consumer = nodes["consumer"]
            await asyncio.gather(
                consumer.lock(net.peer("provider"), 500, 60.0), consumer.lock(net.peer("w7"), 500, 60.0)
            )
            net.sync()  # the shared witnesses' accusations (with the proof) travel with their chains
            return await nodes["authority"].audits.audit(net.peer("consumer"), counterparties=[])

    outcome = asyncio.run(scenario())
    spends = [f for f in outcome["result"]["discrepancies"] if f["kind"] == "double_spend"]
    assert spends and spends[0]["proof"]["kind"] == "double_lock", outcome["result"]
    assert spends[0]["against"] == net.peer("consumer")
    checked = views.verify_audit(net.params, outcome["block"])
    assert any(row["proof"] == "double_lock" and row["verified"] for row in checked["discrepancies"]), checked


def test_a_check_that_catches_an_edited_chain_raises_suspicion_on_an_observer(network: Network) -> None:
    consumer = network["consumer"]
    edited_burn(network)
    cabal = [network.peer(n) for n in CABAL]

    async def scenario() -> dict[str, Any]:
        async with running(network) as nodes:
            return await nodes["provider"].audits.health_check(consumer.me, cabal, timeout=60)

    caught = asyncio.run(scenario())
    assert caught["state"] == "CHECKED" and not any(r["clean"] for r in caught["results"]), caught
    observer = network["w5"]
    assert views.suspicion(observer, consumer.me, 86_400_000, NOW_MS)["suspicion"] == 0
    observer.store.add_many([Block.decode(raw) for name in CABAL for raw in network[name].store.iter_all()])
    seen = views.suspicion(observer, consumer.me, 86_400_000, NOW_MS)
    # one proven offence (three auditors' proofs of one corrupt block) and one unclean check
    assert seen["proofs"] == 3 and seen["suspicion"] > 1.4 and seen["interval_s"] < 86_400 / 2.4, seen


def test_a_false_attestation_is_disproved_by_an_audit_and_costs_the_witness_trust(network: Network) -> None:
    net = network
    net.fund("consumer", 1000)
    net.fund("w1", 1000)
    for name in ("provider", "w5"):  # the liar w1 has paid the observers once: they trust it a little
        net[name].agree(net["w1"].transfer(net.peer(name), 10, NOW_MS - 10 * DAY_MS), NOW_MS - 10 * DAY_MS)
    net.sync()
    consumer = net.peer("consumer")
    head = net["consumer"].state(consumer)
    # three witnesses sign, with HIGH confidence, that the consumer holds 5000 at its head; a requester records it
    session = "cd" * 32
    answers = []
    for name in ("w1", "w2", "w3"):
        statement = {
            "what": "state_answer", "session_id": session, "subject": consumer, "query": "balance", "value": 5000,
            "confidence": "HIGH", "head_seq": head.head_seq, "evidence": head.head_hash.hex(),
            "witness": net.peer(name),
        }  # fmt: skip
        answers.append(Answer(statement, identity(name).sign(canonical_bytes(statement)).hex()).to_wire())
    attestation = {"subject": consumer, "query": "balance", "value": 5000, "confidence": "HIGH"}
    payload = {"session_id": bytes.fromhex(session), **attestation, "answers": answers}
    net["w4"].append(BlockKind.STATE_ATTESTATION, payload, NOW_MS - 1000)
    net.sync()
    before = net["provider"].trust(net.peer("w1"), NOW_MS)
    assert before > 0

    async def scenario() -> dict[str, Any]:
        async with running(net) as nodes:
            return await nodes["w5"].audits.audit(consumer, counterparties=[])

    outcome = asyncio.run(scenario())
    false = [f for f in outcome["result"]["discrepancies"] if f["kind"] == "attestation_false"]
    assert {f["against"] for f in false} == {net.peer(n) for n in ("w1", "w2", "w3")}, outcome["result"]
    checked = views.verify_audit(net.params, outcome["block"])
    assert sum(1 for row in checked["discrepancies"] if row["proof"] == "false_answer" and row["verified"]) == 3
    net.sync(["provider"])  # the provider holds the auditor's chain, and with it the proofs
    assert net["provider"].trust(net.peer("w1"), NOW_MS) < before  # replaying the chains keeps the proofs
    assert len(net["provider"].store.proofs(net.peer("w1"))) == 1
