"""Spec 02 on the .omt runtime between in-process ledgers: after a lock (spec 00) the consumer settles with
the lock's witnesses; both parties write their blocks from the witness-signed integer settlement, the split
matches the ledger's own arithmetic, and no value appears or disappears."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from omerta_ledger_omt.ledger.blocks import Block, BlockKind
from omerta_ledger_omt.ledger.chainstate import ChainState
from omerta_ledger_omt.ledger.errors import ChainRuleError
from omerta_ledger_omt.ledger.settlement import split_settlement
from omerta_ledger_omt.ledger.views import balances
from omerta_ledger_omt.omt.runtime.values import canonical_bytes

from .conftest import NOW_MS, Network
from .runners import running

TIMEOUT_S = 60.0


class Clock:
    """The runners' clock (ms), moved on by the test: a witness that attested no duration signs at most the time
    since it witnessed the lock, so a settlement of ``d`` ms comes at least ``d`` after the lock."""

    def __init__(self) -> None:
        self.ms = NOW_MS

    def __call__(self) -> int:
        return self.ms


async def committed(net: Network, locked: dict[str, Any], timeout: float = TIMEOUT_S) -> None:
    """Wait until every witness of ``locked`` wrote its witness commitment (the time a settlement is bounded from);
    they write it when the consumer's countersignature reaches them, after the consumer saw the lock."""
    session_id = bytes.fromhex(locked["session"])
    ledgers = [ledger for ledger in net.ledgers.values() if ledger.me in locked["witnesses"]]

    def written(ledger: Any) -> bool:
        blocks = ledger.store.blocks(ledger.me)
        return any(b.kind == BlockKind.WITNESS_COMMITMENT and b.payload["session_id"] == session_id for b in blocks)

    deadline = asyncio.get_running_loop().time() + timeout
    while not all(written(ledger) for ledger in ledgers):
        assert asyncio.get_running_loop().time() < deadline, "the witnesses did not write their commitments"
        await asyncio.sleep(0.01)


def lock_and_settle(net: Network, amount: int, duration_ms: int, rate: int) -> tuple[dict[str, Any], dict[str, Any]]:
    clock = Clock()

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        async with running(net, now_ms=clock) as nodes:
            locked = await nodes["consumer"].lock(net.peer("provider"), amount, TIMEOUT_S)
            assert locked["state"] == "LOCKED", locked
            net.sync()  # the witnesses and the provider see the lock on the consumer's chain
            await committed(net, locked)
            clock.ms += duration_ms
            settled = await nodes["consumer"].settle(locked["session"], duration_ms, rate, TIMEOUT_S)
            return locked, settled

    return asyncio.run(run())


def test_settlement_through_spec_02_closes_the_lock_and_pays_the_provider(network: Network) -> None:
    net = network
    net.fund("consumer", 1000)
    net.fund("provider", 100)
    net.sync()
    _locked, settled = lock_and_settle(net, 600, 2 * 3_600_000, 100)
    assert settled["state"] == "SETTLED" and settled["signatures"] >= 3, settled
    split = settled["settlement"]
    trust = split["provider_trust_milli"]
    assert trust == sorted(settled["trust_reports_milli"])[(len(settled["trust_reports_milli"]) - 1) // 2]
    expected = split_settlement(600, 2 * 3_600_000, 100, trust)
    assert (split["provider_payment"], split["burn"], split["refund"]) == (
        expected.provider_payment, expected.burn, expected.refund,
    )  # fmt: skip
    assert split["refund"] == 400 and split["provider_payment"] + split["burn"] == 200

    consumer, provider = net.peer("consumer"), net.peer("provider")
    [settle_block] = [b for b in net["consumer"].store.blocks(consumer) if b.kind == BlockKind.ESCROW_SETTLE]
    assert set(settle_block.payload["settlement"]) == {"settlement", "signatures"}  # the .omt form
    payments = [b for b in net["provider"].store.blocks(provider) if b.kind == BlockKind.ESCROW_PAYMENT]
    assert len(payments) == 1, "the provider recorded its payment from the witnesses' signatures"

    net.sync()
    for name in ("consumer", "provider", "w1"):
        view = balances(net[name], None)
        assert view["balances"][consumer]["balance"] == 1000 - 200
        assert view["balances"][provider]["balance"] == 100 + split["provider_payment"]
        assert view["supply"]["unaccounted"] == 0 and view["supply"]["burned"] == split["burn"]
        assert view["supply"]["locked"] == 0


def test_forged_omt_settlements_are_refused_by_the_chain_rules(network: Network) -> None:
    net = network
    net.fund("consumer", 1000)
    net.sync()
    _locked, settled = lock_and_settle(net, 300, 3_600_000, 100)
    consumer = net.peer("consumer")
    [block] = [b for b in net["consumer"].store.blocks(consumer) if b.kind == BlockKind.ESCROW_SETTLE]
    genuine = block.payload["settlement"]
    state = net["consumer"].state(consumer)

    def replay_with(evidence: dict[str, Any]) -> None:
        """Replay the consumer's chain with altered settlement evidence in the settlement block's place."""
        replay = ChainState(consumer, net.params)
        for b in net["consumer"].store.blocks(consumer):
            if b.seq == block.seq:
                payload = {"settlement": evidence}
                forged = Block.create(net["consumer"].identity, b.seq, b.prev, b.kind, b.time_ms, payload)
                replay.apply(forged)
                return
            replay.apply(b)

    assert state.balance == 1000 - 100 and not state.locks
    richer = {**genuine, "settlement": {**genuine["settlement"], "refund": genuine["settlement"]["refund"] + 50}}
    with pytest.raises(ChainRuleError, match="settlement carries a bad signature"):
        replay_with(richer)
    few = {**genuine, "signatures": genuine["signatures"][:2]}
    with pytest.raises(ChainRuleError, match="settlement has 2 witness signatures, needs 3"):
        replay_with(few)
    assert settled["signatures"] >= 3
    with pytest.raises(ChainRuleError, match="settlement field 'what'"):
        replay_with({**genuine, "settlement": {**genuine["settlement"], "what": "lock"}})
    # even the lock's own witnesses cannot redirect a settlement to another provider
    other_parties = {**genuine["settlement"], "provider": net.peer("w7")}
    by_peer = {ledger.me: ledger for ledger in net.ledgers.values()}
    colluding = [
        {
            "witness": s["witness"],
            "signature": by_peer[s["witness"]].identity.sign(canonical_bytes(other_parties)).hex(),
        }
        for s in genuine["signatures"]
    ]
    with pytest.raises(ChainRuleError, match="other parties than its lock"):
        replay_with({"settlement": other_parties, "signatures": colluding})


def test_top_up_through_spec_00_then_settle_the_larger_escrow(network: Network) -> None:
    net = network
    net.fund("consumer", 1000)
    net.sync()
    consumer = net.peer("consumer")

    clock = Clock()

    async def run() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        async with running(net, now_ms=clock) as nodes:
            locked = await nodes["consumer"].lock(net.peer("provider"), 600, TIMEOUT_S)
            assert locked["state"] == "LOCKED", locked
            net.sync()
            topped = await nodes["consumer"].topup(locked["session"], 300, TIMEOUT_S)
            # 100 left: the witnesses see too little and vote no; the round has not ended when we stop waiting
            refused = await nodes["consumer"].topup(locked["session"], 200, 3.0)
            net.sync()
            await committed(net, locked)
            clock.ms += 3_600_000
            settled = await nodes["consumer"].settle(locked["session"], 3_600_000, 100, TIMEOUT_S)
            return topped, refused, settled

    topped, refused, settled = asyncio.run(run())
    assert topped["topped_up"] and topped["total_escrowed"] == 900 and topped["block"], topped
    assert not refused["topped_up"] and refused["total_escrowed"] == 900, refused
    [block] = [b for b in net["consumer"].store.blocks(consumer) if b.kind == BlockKind.ESCROW_TOPUP]
    assert block.payload["topup"]["new_total"] == 900  # spec 00's top-up result, accepted by the chain rules
    assert settled["state"] == "SETTLED" and settled["settlement"]["escrow_total"] == 900, settled
    assert settled["settlement"]["refund"] == 800
    net.sync()
    view = balances(net["w1"], None)
    assert view["balances"][consumer]["balance"] == 1000 - 100 and view["supply"]["unaccounted"] == 0


def test_settling_before_anyone_synced_the_lock_still_pays_the_provider(network: Network) -> None:
    net = network
    net.fund("consumer", 1000)
    net.sync()

    clock = Clock()

    async def run() -> dict[str, Any]:
        async with running(net, now_ms=clock) as nodes:
            locked = await nodes["consumer"].lock(net.peer("provider"), 600, TIMEOUT_S)
            await committed(net, locked)
            clock.ms += 3_600_000
            return await nodes["consumer"].settle(locked["session"], 3_600_000, 100, TIMEOUT_S)

    settled = asyncio.run(run())
    assert settled["state"] == "SETTLED", settled
    provider = net.peer("provider")
    # the provider held no copy of the lock, so it could not write its payment from the witnesses' signatures;
    # once it syncs the consumer's chain it claims the payment from the settlement recorded there
    assert not [b for b in net["provider"].store.blocks(provider) if b.kind == BlockKind.ESCROW_PAYMENT]
    net.sync()
    net["provider"].append(BlockKind.ESCROW_PAYMENT, payment_claim(net), NOW_MS)
    net.sync()
    view = balances(net["w1"], None)
    assert view["balances"][provider]["balance"] == settled["settlement"]["provider_payment"]
    assert view["supply"]["unaccounted"] == 0 and view["supply"]["locked"] == 0


def payment_claim(net: Network) -> dict[str, Any]:
    """What the provider's node writes on sync for a settled session it has not claimed (backend.accept_incoming)."""
    state = net["provider"].state(net.peer("consumer"))
    [(lock, settlement)] = state.settled.values()
    return {"lock": lock, "settlement": settlement}


def test_the_provider_hears_the_lock_confirmed_with_its_consumer_and_amount(network: Network) -> None:
    net = network
    net.fund("consumer", 1000)
    net.sync()

    async def run() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        async with running(net) as nodes:
            locked = await nodes["consumer"].lock(net.peer("provider"), 600, TIMEOUT_S)
            confirmed = await nodes["provider"].confirmed_lock(locked["session"], TIMEOUT_S)
            unknown = await nodes["provider"].confirmed_lock("ab" * 32, 0.2)
            return locked, confirmed, unknown

    locked, confirmed, unknown = asyncio.run(run())
    assert locked["state"] == "LOCKED"
    assert confirmed["confirmed"] and confirmed["state"] == "SERVICE_PHASE"
    assert (confirmed["consumer"], confirmed["amount"]) == (net.peer("consumer"), 600)
    assert not unknown["confirmed"] and unknown["state"] is None


def test_a_witness_that_attested_nothing_signs_at_most_the_time_since_the_lock(network: Network) -> None:
    """No witness attested the session (its provider never ended it): ten minutes after the lock they refuse an
    hour as more than they can prove (``duration_unproven``), and sign the ten minutes."""
    net = network
    net.fund("consumer", 1000)
    net.sync()
    clock = Clock()

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        async with running(net, now_ms=clock) as nodes:
            locked = await nodes["consumer"].lock(net.peer("provider"), 600, TIMEOUT_S)
            assert locked["state"] == "LOCKED", locked
            net.sync()
            await committed(net, locked)
            clock.ms += 600_000
            longer = await nodes["consumer"].settle(locked["session"], 600_001, 100, TIMEOUT_S)
            within = await nodes["consumer"].settle(locked["session"], 600_000, 100, TIMEOUT_S)
            return longer, within

    longer, within = asyncio.run(run())
    assert longer["state"] == "UNSETTLED" and longer["failure_reason"] == "duration_unproven", longer
    assert within["state"] == "SETTLED" and within["settlement"]["duration_ms"] == 600_000, within
    assert within["settlement"]["refund"] == 600 - 16  # 10 min at 100/h is 16 (integer units, rounded down)
