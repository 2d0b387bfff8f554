"""Spec 02's provider path between in-process ledgers: a consumer locks (spec 00, signing its hourly rate),
the witnesses attest the session (spec 01), and the consumer never settles. After ABANDON_TIMEOUT the provider
claims: the witnesses sign the split for the attested duration at the signed rate, the provider records its
payment, every observer counts the lock closed by it with nothing unaccounted, and a consumer that comes back
records that same settlement. Claims with another duration, another rate or before the timeout are refused,
and so is a consumer's own settlement of a session already claimed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from omerta_ledger_omt.ledger.attestations import find_lock
from omerta_ledger_omt.ledger.blocks import BlockKind
from omerta_ledger_omt.ledger.omt_host import ATTEST_CHANNEL, SETTLE_CHANNEL
from omerta_ledger_omt.ledger.settlement import split_settlement
from omerta_ledger_omt.ledger.transactions import SETTLE_DONE, TransactionRunner
from omerta_ledger_omt.ledger.views import balances

from .conftest import Network
from .runners import running
from .test_attest_runner import Clock, blocks_of

TIMEOUT_S = 60.0
RATE = 100
#: The session's length on the runners' clock: two hours, so 200 of the 600 locked are owed.
SESSION_MS = 7_200_000
#: Spec 02's ABANDON_TIMEOUT as the runners load it (the default: an hour), and a second more.
ABANDON_MS = 3_600_000 + 1000

Scene = Callable[[dict[str, TransactionRunner], Clock, str], Awaitable[dict[str, Any]]]


def abandoned(net: Network, scene: Scene) -> dict[str, Any]:
    """Lock 600 at RATE, run and attest a two-hour session, and leave it unsettled; then play ``scene``."""

    async def run() -> dict[str, Any]:
        clock = Clock()
        async with running(net, now_ms=clock) as nodes:
            locked = await nodes["consumer"].lock(net.peer("provider"), 600, TIMEOUT_S, RATE)
            assert locked["state"] == "LOCKED", locked
            confirmed = await nodes["provider"].confirmed_lock(locked["session"], TIMEOUT_S)
            assert confirmed["confirmed"] and confirmed["hourly_rate"] == RATE, confirmed
            net.sync()
            session = locked["session"]
            started = await nodes["provider"].start_vm(session, timeout=TIMEOUT_S)
            assert started["state"] == "VM_RUNNING", started
            clock.ms += SESSION_MS
            ended = await nodes["provider"].end_vm(session, timeout=TIMEOUT_S)
            assert ended["state"] == "SESSION_COMPLETE" and ended["duration_ms"] == SESSION_MS, ended
            assert await nodes["consumer"].wait_outcome(ATTEST_CHANNEL, session, "Consumer", {"attested"}, TIMEOUT_S)
            net.sync()
            return await scene(nodes, clock, session)

    return asyncio.run(run())


async def forged_claim(runner: TransactionRunner, session: str, **overrides: Any) -> dict[str, Any]:
    """Open the provider's claim by hand with some inputs changed; return its end state and reason."""
    lock = find_lock(runner.ledger.store, bytes.fromhex(session))
    assert lock is not None
    signed = runner.ledger.store.served_request(bytes.fromhex(session))
    assert signed is not None
    inputs = {
        "consumer": lock.consumer,
        "witnesses": list(lock.witnesses),
        "lock_hash": lock.lock_hash.hex(),
        "escrow_total": lock.total,
        "duration_ms": SESSION_MS,
        "hourly_rate": RATE,
        "lock_request": signed["request"],
        "request_signature": signed["signature"],
    } | overrides
    runner.tables[SETTLE_CHANNEL].instances.pop((session, "Provider"), None)
    _, actions = runner.engine.open(
        SETTLE_CHANNEL, "Provider", "claim", inputs, runner.now_ms() / 1000, session=session
    )
    instance = await runner.follow(SETTLE_CHANNEL, session, "Provider", actions, SETTLE_DONE, TIMEOUT_S)
    return {"state": instance.state, "failure_reason": instance.store.get("failure_reason")}


def test_an_abandoned_session_is_claimed_by_its_provider_and_adopted_by_its_consumer(network: Network) -> None:
    net = network
    net.fund("consumer", 1000)
    net.fund("provider", 100)
    net.sync()

    async def scene(nodes: dict[str, TransactionRunner], clock: Clock, session: str) -> dict[str, Any]:
        early = await nodes["provider"].claim(session, TIMEOUT_S)
        clock.ms += ABANDON_MS
        claimed = await nodes["provider"].claim(session, TIMEOUT_S)
        again = await nodes["provider"].claim(session, TIMEOUT_S)
        net.sync()
        views = {name: balances(net[name], None) for name in ("consumer", "provider", "w1", "w7")}
        adopted = await nodes["consumer"].settle(session, None, RATE, TIMEOUT_S)
        return {"early": early, "claimed": claimed, "again": again, "views": views, "adopted": adopted}

    out = abandoned(net, scene)
    early, claimed = out["early"], out["claimed"]
    assert early["state"] == "UNSETTLED" and early["failure_reason"] == "before_abandon_timeout", early
    assert claimed["state"] == "SETTLED" and claimed["signatures"] >= 3 and claimed["block"], claimed
    split = claimed["settlement"]
    assert split["duration_ms"] == SESSION_MS and split["hourly_rate"] == RATE and split["escrow_total"] == 600
    expected = split_settlement(600, SESSION_MS, RATE, split["provider_trust_milli"])
    assert (split["provider_payment"], split["burn"], split["refund"]) == (
        expected.provider_payment, expected.burn, expected.refund,
    )  # fmt: skip
    assert out["again"]["state"] == "PAID", "a second claim of a paid session changes nothing"
    assert len(blocks_of(net, "provider", BlockKind.ESCROW_PAYMENT)) == 1

    consumer, provider = net.peer("consumer"), net.peer("provider")
    for name, view in out["views"].items():  # the lock is open on the consumer's chain, closed by the claim
        assert view["balances"][consumer] == {**view["balances"][consumer], "balance": 400 + split["refund"],
                                              "locked": 0}, name  # fmt: skip
        assert view["balances"][provider]["balance"] == 100 + split["provider_payment"], name
        assert view["supply"]["unaccounted"] == 0 and view["supply"]["locked"] == 0, (name, view["supply"])
        assert view["supply"]["burned"] == split["burn"], name

    adopted = out["adopted"]
    assert adopted["state"] == "SETTLED" and adopted["adopted_claim"], adopted
    assert adopted["settlement"] == split, "the consumer records the provider's settlement, not a new one"
    [settle] = blocks_of(net, "consumer", BlockKind.ESCROW_SETTLE)
    [payment] = blocks_of(net, "provider", BlockKind.ESCROW_PAYMENT)
    assert settle.payload["settlement"] == payment.payload["settlement"]
    net.sync()
    for name in ("consumer", "provider", "w1"):
        view = balances(net[name], None)
        assert view["balances"][consumer]["balance"] == 400 + split["refund"]
        assert view["supply"]["unaccounted"] == 0 and view["supply"]["locked"] == 0


def test_witnesses_refuse_a_claim_of_another_duration_or_rate_and_a_settlement_after_a_claim(
    network: Network,
) -> None:
    net = network
    net.fund("consumer", 1000)
    net.sync()

    async def scene(nodes: dict[str, TransactionRunner], clock: Clock, session: str) -> dict[str, Any]:
        clock.ms += ABANDON_MS
        provider = nodes["provider"]
        longer = await forged_claim(provider, session, duration_ms=SESSION_MS + 60_000)
        dearer = await forged_claim(provider, session, hourly_rate=RATE * 2)
        signed = provider.ledger.store.served_request(bytes.fromhex(session))
        assert signed is not None
        resigned = {**signed["request"], "hourly_rate": RATE * 2}  # the provider cannot sign for the consumer
        forged = await forged_claim(provider, session, hourly_rate=RATE * 2, lock_request=resigned)
        smaller = await forged_claim(provider, session, escrow_total=500)
        honest = await provider.claim(session, TIMEOUT_S)
        net.sync()
        clock.ms += 121_000  # the witnesses forget their finished claim instances (engine.TERMINAL_RETENTION_S)
        for runner in nodes.values():
            await runner.on_timer(clock() / 1000)
        # the consumer asks for its own settlement of the claimed session, bypassing the adoption
        consumer = nodes["consumer"]
        lock = consumer.ledger.state(consumer.ledger.me).locks[bytes.fromhex(session)]
        inputs = {
            "provider": lock.provider,
            "witnesses": list(lock.witnesses),
            "lock_hash": lock.lock_hash.hex(),
            "escrow_total": lock.total,
            "duration_ms": SESSION_MS,
            "hourly_rate": RATE,
        }
        _, actions = consumer.engine.open(SETTLE_CHANNEL, "Consumer", "settle", inputs, clock() / 1000,
                                          session=session)  # fmt: skip
        own = await consumer.follow(SETTLE_CHANNEL, session, "Consumer", actions, SETTLE_DONE, TIMEOUT_S)
        return {"longer": longer, "dearer": dearer, "forged": forged, "smaller": smaller, "honest": honest,
                "own": {"state": own.state, "failure_reason": own.store.get("failure_reason")}}  # fmt: skip

    out = abandoned(net, scene)
    assert out["longer"] == {"state": "UNSETTLED", "failure_reason": "duration_differs_from_attestation"}, out
    assert out["dearer"] == {"state": "UNSETTLED", "failure_reason": "rate_not_signed_by_consumer"}, out
    assert out["forged"] == {"state": "UNSETTLED", "failure_reason": "rate_not_signed_by_consumer"}, out
    assert out["smaller"] == {"state": "UNSETTLED", "failure_reason": "lock_differs"}, out
    assert out["honest"]["state"] == "SETTLED", "refused claims leave the witnesses ready for an honest one"
    assert out["own"] == {"state": "UNSETTLED", "failure_reason": "claimed_by_provider"}, out["own"]
    assert not blocks_of(net, "consumer", BlockKind.ESCROW_SETTLE)
