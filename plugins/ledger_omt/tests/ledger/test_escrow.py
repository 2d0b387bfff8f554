"""Escrow between in-process identities, each with its own SQLite store, blocks moved in wire form."""

from __future__ import annotations

from dataclasses import replace

import pytest
from omerta_ledger_omt.ledger.blocks import Block, BlockKind
from omerta_ledger_omt.ledger.errors import ChainRuleError, LedgerError
from omerta_ledger_omt.ledger.escrow import (
    lock_statement,
    release_statement,
    session_id_for,
    settlement_statement,
    topup_statement,
)
from omerta_ledger_omt.ledger.local import supply_audit
from omerta_ledger_omt.ledger.proofs import ChainRuleProof, proof_from_wire
from omerta_ledger_omt.ledger.settlement import split_settlement
from omerta_ledger_omt.ledger.statements import Statement
from omerta_ledger_omt.ledger.witnesses import select_witnesses, selection_seed, verify_selection

from .conftest import DAY_MS, NOW_MS, START_MS, Network, identity

WITNESSES = ["w1", "w2", "w3", "w4", "w5"]


def gather(net: Network, lock: Statement, names: list[str]) -> tuple[Statement, dict[str, str]]:
    signed, refusals = lock, {}
    for name in names:
        try:
            signed = signed.merged(net[name].witness_lock(lock, NOW_MS))
        except LedgerError as exc:
            refusals[name] = str(exc)
    return signed, refusals


def new_lock(net: Network, amount: int, witnesses: list[str], nonce: bytes = b"\x01" * 32) -> Statement:
    session = session_id_for(net.peer("consumer"), net.peer("provider"), nonce)
    return lock_statement(
        session, net.peer("consumer"), net.peer("provider"), amount, [net.peer(w) for w in witnesses], NOW_MS + DAY_MS
    )


def prepare(net: Network) -> None:
    """Fund the consumer and the provider; the provider pays each witness once so witnesses know it."""
    net.fund("consumer", 1000)
    net.fund("provider", 5000)
    for index, name in enumerate(WITNESSES):
        net[name].agree(net["provider"].transfer(net.peer(name), 500, START_MS + 2 * DAY_MS + index), NOW_MS)
    net.sync()


def test_escrow_lock_and_settle_with_five_witnesses(network: Network) -> None:
    net = network
    prepare(net)
    consumer, provider = net.peer("consumer"), net.peer("provider")

    # witness selection: provider checkpoints the heads it holds; both sides recompute the same set
    checkpoint = net["provider"].checkpoint(NOW_MS)
    net.sync()
    candidates = [h[0] for h in checkpoint.payload["heads"] if h[0] != net.peer("authority")]
    seed = selection_seed(b"s" * 32, b"p" * 32, b"c" * 32)
    chosen = select_witnesses(candidates, seed, exclude=[consumer, provider])
    verify_selection(chosen, candidates, seed, exclude=[provider, consumer])
    names = [n for n in net.ledgers if net.peer(n) in chosen]
    assert len(names) == 5

    lock = new_lock(net, 600, names)
    signed, refusals = gather(net, lock, names[:3])  # two witnesses never answer: threshold 3 suffices
    assert refusals == {}
    net["consumer"].record_lock(signed, NOW_MS)
    net.sync()
    for ledger in net.ledgers.values():
        assert ledger.balance(consumer) == 400
        assert ledger.state(consumer).locked == 600

    reports = [round(net[n].trust(provider, NOW_MS) * 1000) for n in names]
    settlement = settlement_statement(signed, 600, 2 * 3_600_000, 100, reports)
    assert settlement.body["provider_trust_milli"] > 0, "at least three of the chosen witnesses know the provider"
    signed_settlement = settlement
    for name in names[1:4]:
        signed_settlement = signed_settlement.merged(net[name].witness_statement(settlement, signed, NOW_MS))
    net["consumer"].record_settlement(signed_settlement, NOW_MS)
    net["provider"].record_payment(signed, signed_settlement, NOW_MS)
    net.sync()

    split = split_settlement(600, 2 * 3_600_000, 100, settlement.body["provider_trust_milli"])
    assert split.refund == 400 and split.provider_payment + split.burn == 200 and split.burn > 0
    views = {
        name: {peer: ledger.balance(peer) for peer in ledger.store.owners()} for name, ledger in net.ledgers.items()
    }
    first = next(iter(views.values()))
    assert all(view == first for view in views.values()), "every node sees every balance alike"
    assert first[consumer] == 800
    assert first[provider] == 5000 - 2500 + split.provider_payment
    for ledger in net.ledgers.values():
        audit = supply_audit(ledger.store.states())
        assert audit["minted"] == 6000 and audit["burned"] == split.burn and audit["unaccounted"] == 0


def test_a_witness_refuses_a_second_lock_on_the_same_funds(network: Network) -> None:
    net = network
    prepare(net)
    first, refusals = gather(net, new_lock(net, 800, WITNESSES[:3]), WITNESSES[:3])
    assert refusals == {}
    # before the consumer even writes the first lock, the same witnesses refuse a second one
    second = new_lock(net, 800, WITNESSES[:3], nonce=b"\x02" * 32)
    _, refusals = gather(net, second, WITNESSES[:3])
    assert set(refusals) == set(WITNESSES[:3])
    assert all("double_lock" in reason for reason in refusals.values())
    # once the lock is on the chain, witnesses who never saw it refuse too, after sync
    net["consumer"].record_lock(first, NOW_MS)
    net.sync()
    _, refusals = gather(net, new_lock(net, 800, ["w4", "w5", "w6"], nonce=b"\x03" * 32), ["w4", "w5", "w6"])
    assert set(refusals) == {"w4", "w5", "w6"}
    assert "available 200" in refusals["w4"]


def test_a_forced_double_lock_is_proven_and_the_offender_loses_trust(network: Network) -> None:
    net = network
    prepare(net)
    first, _ = gather(net, new_lock(net, 800, WITNESSES[:3]), WITNESSES[:3])
    net["consumer"].record_lock(first, NOW_MS)
    # witnesses w6, w7 and w4 never received the consumer's new block: they sign a second lock
    second, refusals = gather(net, new_lock(net, 800, ["w4", "w6", "w7"], nonce=b"\x04" * 32), ["w4", "w6", "w7"])
    assert refusals == {}
    with pytest.raises(ChainRuleError, match="double lock"):
        net["consumer"].record_lock(second, NOW_MS)  # an honest node never writes it
    settle_and_pay_small_session(net)
    net.sync()
    observers = [n for n in net.ledgers if n != "consumer"]
    before = {n: net[n].trust(net.peer("consumer"), NOW_MS) for n in observers}
    trusting = [n for n, t in before.items() if t > 0]
    assert {"provider", "w1", "w2", "w3"} <= set(trusting)

    # a cheating consumer writes it anyway, bypassing its own checks
    state = net["consumer"].state(net.peer("consumer"))
    forged = Block.create(
        identity("consumer"),
        state.head_seq + 1,
        state.head_hash,
        BlockKind.ESCROW_LOCK,
        NOW_MS,
        {"lock": second.to_wire()},
    )
    net["consumer"].store.add(forged)
    net.sync()
    for name in ["w1", "provider", "w7"]:
        ledger = net[name]
        assert ledger.balance(net.peer("consumer")) == state.balance, "the offending block is not applied"
        [proof] = ledger.store.proofs(net.peer("consumer"))
        assert isinstance(proof, ChainRuleProof)
        assert "double lock" in proof.reason(net.params)
    for name in trusting:
        after = net[name].trust(net.peer("consumer"), NOW_MS)
        assert after <= before[name] * 0.1 + 1e-12, f"{name} still trusts the offender"
    # the proof stands on its own for a node that holds nothing else
    parsed = proof_from_wire(proof.to_wire())
    parsed.verify(net.params)


def settle_and_pay_small_session(net: Network) -> None:
    """Settle the consumer's open session so the provider (trusted by w1) has a verified edge to the consumer."""
    [lock_state] = net["consumer"].state(net.peer("consumer")).locks.values()
    net.sync()
    witnesses = [n for n in net.ledgers if net.peer(n) in lock_state.witnesses]
    lock_block = next(b for b in net["consumer"].store.blocks(net.peer("consumer")) if b.kind == BlockKind.ESCROW_LOCK)
    lock = Statement.from_wire(lock_block.payload["lock"])
    settlement = settlement_statement(lock, lock_state.total, 3_600_000, 500, [900, 900, 900])
    signed = settlement
    for name in witnesses:
        signed = signed.merged(net[name].witness_statement(settlement, lock, NOW_MS))
    net["consumer"].record_settlement(signed, NOW_MS)
    net["provider"].record_payment(lock, signed, NOW_MS)


def test_forged_and_tampered_statements_are_refused(network: Network) -> None:
    net = network
    prepare(net)
    lock = new_lock(net, 300, WITNESSES[:3])
    signed, _ = gather(net, lock, WITNESSES[:2])
    with pytest.raises(ChainRuleError, match="2 witness signatures, needs 3"):
        net["consumer"].record_lock(signed, NOW_MS)
    outsider = lock.signed_by(identity("w7"))
    with pytest.raises(ChainRuleError, match="not a witness"):
        net["consumer"].record_lock(signed.merged(outsider), NOW_MS)
    full, _ = gather(net, lock, WITNESSES[:3])
    tampered = replace(full, body={**full.body, "amount": 10})
    with pytest.raises(ChainRuleError, match="bad signature"):
        net["consumer"].record_lock(tampered, NOW_MS)
    net["consumer"].record_lock(full, NOW_MS)
    # a settlement whose arithmetic does not add up is refused by witnesses and by the chain rules
    good = settlement_statement(full, 300, 3_600_000, 100, [500])
    bad = Statement.create(good.kind, {**good.body, "burn": 0, "provider_payment": 100})
    with pytest.raises(LedgerError, match="differ from the recomputed"):
        net["w1"].witness_statement(bad, full, NOW_MS)
    forged = bad
    for name in WITNESSES[:3]:
        forged = forged.merged(bad.signed_by(net[name].identity))
    with pytest.raises(ChainRuleError, match="differ from the recomputed"):
        net["consumer"].record_settlement(forged, NOW_MS)


def test_topup_and_release_return_everything(network: Network) -> None:
    net = network
    prepare(net)
    lock, _ = gather(net, new_lock(net, 300, WITNESSES[:3]), WITNESSES[:3])
    net["consumer"].record_lock(lock, NOW_MS)
    net.sync()
    topup = topup_statement(lock, 300, 200)
    signed = topup
    for name in WITNESSES[:3]:
        signed = signed.merged(net[name].witness_statement(topup, lock, NOW_MS))
    net["consumer"].record_topup(signed, NOW_MS)
    assert net["consumer"].state(net.peer("consumer")).locked == 500
    too_much = topup_statement(lock, 500, 600)
    net.sync()
    with pytest.raises(LedgerError, match="top-up refused"):
        net["w1"].witness_statement(too_much, lock, NOW_MS)
    release = release_statement(lock, "vm_allocation_failed")
    signed_release = release
    for name in WITNESSES[:3]:
        signed_release = signed_release.merged(net[name].witness_statement(release, lock, NOW_MS))
    net["consumer"].record_release(signed_release, NOW_MS)
    assert net["consumer"].balance(net.peer("consumer")) == 1000
    assert net["consumer"].state(net.peer("consumer")).locked == 0


def test_chain_rules_for_value(network: Network) -> None:
    net = network
    net.fund("consumer", 100)
    with pytest.raises(ChainRuleError, match="exceeds the available balance 100"):
        net["consumer"].transfer(net.peer("provider"), 101, NOW_MS)
    with pytest.raises(ChainRuleError, match="not a mint authority"):
        net["consumer"].mint(net.peer("provider"), 5, NOW_MS)
    proposal = net["consumer"].transfer(net.peer("provider"), 40, NOW_MS)
    with pytest.raises(ChainRuleError, match="addressed to someone else"):
        net["w1"].agree(proposal, NOW_MS)
    net["provider"].agree(proposal, NOW_MS)
    with pytest.raises(ChainRuleError, match="a second time"):
        net["provider"].agree(proposal, NOW_MS)
    net["provider"].burn(10, NOW_MS)
    net.sync()
    audit = supply_audit(net["w1"].store.states())
    assert audit == {**audit, "minted": 100, "held": 90, "burned": 10, "unaccounted": 0}
