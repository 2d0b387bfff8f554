"""Spec 00 on the .omt runtime between in-process ledgers: a consumer that promises the same funds to two
providers at one chain head is refused, proven and accused, and its trust falls wherever the proof arrives.

The real transport and node processes are exercised by the seven-node acceptance test; here envelopes pass
between the runners' own ``on_envelope`` so that the witnesses' decisions can be inspected directly."""

from __future__ import annotations

import asyncio
from typing import Any

from omerta_ledger_omt.ledger.blocks import BlockKind
from omerta_ledger_omt.ledger.omt_host import decode_envelope
from omerta_ledger_omt.ledger.proofs import DoubleLockProof

from omerta_core.interfaces.common import PeerId

from .conftest import DAY_MS, NOW_MS, Network
from .runners import running

LOCK_TIMEOUT_S = 60.0


def test_double_lock_is_refused_proven_and_lowers_trust(network: Network) -> None:
    net = network
    net.fund("consumer", 1000)
    others = [name for name in net.ledgers if name != "consumer"]
    # the consumer pays every other node once: each then has a verified edge to it, so its trust is above zero
    for name in others:
        proposal = net["consumer"].transfer(net.peer(name), 10, NOW_MS - 10 * DAY_MS)
        net[name].agree(proposal, NOW_MS - 10 * DAY_MS)
    net.sync()
    before = {name: net[name].trust(net.peer("consumer"), NOW_MS) for name in others}
    assert all(value > 0 for value in before.values()), before
    available = net["consumer"].state(net.peer("consumer")).available()
    assert available == 1000 - 10 * len(others)

    async def run() -> list[dict[str, Any]]:
        async with running(net) as nodes:
            consumer = nodes["consumer"]
            return list(
                await asyncio.gather(
                    consumer.lock(net.peer("provider"), 500, LOCK_TIMEOUT_S),
                    consumer.lock(net.peer("w7"), 500, LOCK_TIMEOUT_S),
                )
            )

    outcomes = asyncio.run(run())
    shared = set(outcomes[0]["witnesses"]) & set(outcomes[1]["witnesses"])
    assert shared, outcomes
    # every witness of both locks saw the second request conflict with the first it accepted: it accused
    accusers = [
        name
        for name in others
        if any(
            block.kind == BlockKind.ACCUSATION and block.payload["subject"] == net.peer("consumer")
            for block in net[name].store.blocks(net.peer(name))
        )
    ]
    assert {net.peer(name) for name in accusers} == shared, outcomes
    for name in accusers:
        [proof] = net[name].store.proofs(net.peer("consumer"))
        assert isinstance(proof, DoubleLockProof)
        assert proof.first.request["amount"] + proof.second.request["amount"] == 1000
        assert proof.first.request["available"] == available
    # at most one lock reached the consumer's chain: its own chain rules refuse the second
    state = net["consumer"].state(net.peer("consumer"))
    assert sum(lock.total for lock in state.locks.values()) <= 500

    # the accusations travel with the accusers' chains; every other observer verifies the proof and trusts less
    net.sync()
    for name in others:
        after = net[name].trust(net.peer("consumer"), NOW_MS)  # replays the accusers' chains
        assert len(net[name].store.proofs(net.peer("consumer"))) == 1, name
        assert after < before[name], (name, before[name], after)


def test_a_witness_behind_the_consumer_catches_up_before_judging(network: Network) -> None:
    net = network
    net.fund("consumer", 1000)
    net.sync()
    # the consumer's head moves on after the witnesses last synced: its requests name a head they do not hold
    net["consumer"].transfer(net.peer("w1"), 10, NOW_MS - DAY_MS)
    caught_up: list[str] = []

    async def catch_up(peer: str) -> None:
        caught_up.append(peer)
        net.sync()

    async def run(with_catch_up: bool) -> dict[str, Any]:
        async with running(net, catch_up if with_catch_up else None) as nodes:
            return await nodes["consumer"].lock(net.peer("provider"), 500, 30.0)

    behind = asyncio.run(run(with_catch_up=False))
    assert behind["state"] == "FAILED" and behind["failure_reason"] == "lock_rejected", behind
    assert caught_up == []
    locked = asyncio.run(run(with_catch_up=True))
    assert locked["state"] == "LOCKED", locked
    assert set(caught_up) == {net.peer("consumer")}


def test_a_lock_retried_after_a_timeout_is_not_a_double_lock(network: Network) -> None:
    """The witnesses' results never reach the consumer, its wait ends, it asks again on the same terms at the
    same head: the retry locks, nobody accuses, and the chain holds one lock."""
    net = network
    net.fund("consumer", 1000)
    net.sync()
    consumer_peer = net.peer("consumer")

    def holding_the_request() -> int:
        return sum(1 for ledger in net.ledgers.values() if ledger.store.witnessed_requests(consumer_peer))

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        async with running(net) as nodes:
            consumer = nodes["consumer"]
            hear = consumer.on_envelope

            async def deaf_to_results(peer: PeerId, data: bytes) -> None:
                if decode_envelope(data).type != "LOCK_RESULT_FOR_SIGNATURE":
                    await hear(peer, data)

            consumer.on_envelope = deaf_to_results  # type: ignore[method-assign]
            first = await consumer.lock(net.peer("provider"), 600, 0.0)
            async with asyncio.timeout(LOCK_TIMEOUT_S):
                while holding_the_request() < 5:  # every witness accepted the first try and kept its request
                    await asyncio.sleep(0.05)
            consumer.on_envelope = hear  # type: ignore[method-assign]
            retry = await consumer.lock(net.peer("provider"), 600, LOCK_TIMEOUT_S)
            return first, retry

    first, retry = asyncio.run(run())
    assert retry["state"] == "LOCKED", retry
    assert first["state"] != "LOCKED"
    accusations = [
        block
        for ledger in net.ledgers.values()
        for block in ledger.store.blocks(ledger.me)
        if block.kind == BlockKind.ACCUSATION
    ]
    assert accusations == [] and all(not ledger.store.proofs() for ledger in net.ledgers.values())
    locks = net["consumer"].state(consumer_peer).locks
    assert [lock.total for lock in locks.values()] == [600]
