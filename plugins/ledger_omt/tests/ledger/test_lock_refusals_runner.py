"""Why a lock is refused, between in-process runners: a consumer that witnesses another lock while its own is
judged keeps the head its request names, a failed balance query leaves no earlier figure to judge by, a consumer
whose own chain moved on asks again at the new head, a lock beyond the balance asks no witness, and every refusal is
one line saying why.

Each reproduces, deterministically, a way the rental tests' two consumers renting at once saw ``lock_rejected``
(``plugins/rental/tests/test_rental_nodes.py``): envelopes pass between the runners' own handlers, and a held
``LOCK_INTENT`` puts the other lock, or the consumer's own block, exactly between signing and judging."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from omerta_ledger_omt.ledger.blocks import BlockKind
from omerta_ledger_omt.ledger.omt_host import CHANNEL, decode_envelope
from omerta_ledger_omt.ledger.query_view import SyncTimes
from omerta_ledger_omt.ledger.transactions import TransactionRunner
from structlog.testing import capture_logs

from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.ledger import INSUFFICIENT_FUNDS

from .conftest import DAY_MS, NOW_MS, Network
from .runners import running

LOCK_TIMEOUT_S = 60.0
FUNDS = 100_000
PRICE = 3600


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Network]:
    """Seven ledgers as in the rental tests: each consumer's five candidates are all its witnesses, and
    ``consumer`` and ``w1`` are each a witness of the other's lock."""
    net = Network(tmp_path, ["consumer", "provider", "w1", "w2", "w3", "w4"])
    try:
        net.fund("consumer", FUNDS)
        net.fund("w1", FUNDS)
        net.sync()
        yield net
    finally:
        net.close()


def hold_intent(provider: TransactionRunner, consumer: str, until: Callable[[], Awaitable[Any]]) -> None:
    """The provider hears ``consumer``'s LOCK_INTENT only once ``until()`` is done: the consumer's request is
    signed, and its witnesses judge it afterwards."""
    hear = provider.on_envelope

    async def holding(peer: PeerId, data: bytes) -> None:
        if str(peer) == consumer and decode_envelope(data).type == "LOCK_INTENT":
            await until()
        await hear(peer, data)

    provider.on_envelope = holding  # type: ignore[method-assign]


def test_a_consumer_witnessing_another_lock_keeps_the_head_its_own_request_names(small: Network) -> None:
    """``consumer`` signs its request; before its witnesses judge it, ``w1``'s lock runs with ``consumer`` among
    its witnesses. The blocks ``consumer`` writes as that witness (the state attestation of its balance query,
    its witness commitment) wait until its own request is decided, so its witnesses find the head it named."""
    net = small

    async def catch_up(_peer: str) -> None:
        net.sync()

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        async with running(net, catch_up) as nodes:
            other_done = asyncio.Event()
            hold_intent(nodes["provider"], net.peer("consumer"), other_done.wait)
            mine = asyncio.ensure_future(nodes["consumer"].lock(net.peer("provider"), PRICE, LOCK_TIMEOUT_S))
            await asyncio.sleep(0)  # the consumer signs at its head now
            other = await nodes["w1"].lock(net.peer("provider"), PRICE, LOCK_TIMEOUT_S)
            other_done.set()
            return await mine, other

    mine, other = asyncio.run(run())
    assert other["state"] == "LOCKED", other
    assert net.peer("consumer") in other["witnesses"]
    assert mine["state"] == "LOCKED", mine
    kinds = [block.kind for block in net["consumer"].store.blocks(net.peer("consumer"))]
    assert kinds[2:] == [BlockKind.ESCROW_LOCK, BlockKind.STATE_ATTESTATION, BlockKind.WITNESS_COMMITMENT], kinds


def test_a_failed_balance_query_leaves_no_earlier_figure_to_judge_by(small: Network) -> None:
    """``w1`` had the consumer's balance attested by a query of its own; the balance query made for the
    consumer's lock then fails (every answer LOW). ``w1`` votes to reject, saying the query failed, instead of
    judging by the earlier figure, and the consumer's refusal is one line."""
    net = small
    witnesses = [net.peer(name) for name in ("authority", "w1", "w2", "w3", "w4")]

    async def catch_up(_peer: str) -> None:
        net.sync()

    async def run(nodes: dict[str, TransactionRunner]) -> tuple[dict[str, Any], dict[str, Any]]:
        earlier = await nodes["w1"].query(net.peer("consumer"), "balance", witnesses, "HIGH")
        for runner in nodes.values():  # nobody has synced the consumer since: every answer is LOW
            runner.catch_up = None
            runner.engine.synced = runner.engine.query_view.synced = SyncTimes()
        return earlier, await nodes["consumer"].lock(net.peer("provider"), PRICE, LOCK_TIMEOUT_S)

    async def main() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        async with running(net, catch_up) as nodes:
            earlier, lock = await run(nodes)
            witness = nodes["w1"].engine.instance(CHANNEL, lock["session"], "Witness")
            assert witness is not None
            return earlier, lock, witness.store

    with capture_logs() as logs:
        earlier, lock, witness = asyncio.run(main())
    assert earlier["state"] == "ATTESTED" and earlier["value"] == FUNDS, earlier
    assert witness["lock_request"]["available"] == FUNDS  # the earlier figure would have let it accept
    assert witness["verdict"] == "REJECT"
    [refusal] = [e for e in logs if e["event"] == "lock request refused" and e["session"] == lock["session"][:12]][:1]
    assert refusal["reason"].startswith("no attested balance for the request: the balance query failed"), refusal
    assert "disagreement" in refusal["reason"] and "LOW x5" in refusal["reason"], refusal
    assert lock["state"] == "FAILED" and lock["failure_reason"] == "lock_rejected", lock
    assert lock["reason"].startswith("lock_rejected: too few of the 5 witnesses confirmed"), lock
    assert "\n" not in lock["reason"] and f"{FUNDS} available at head #" in lock["reason"]


def test_a_consumer_whose_own_chain_moved_asks_again_at_the_new_head(small: Network) -> None:
    """The consumer writes a block of its own (a transfer) after signing its request and before the witnesses
    judge it: one try is refused with that reason; with tries, the next request names the new head and locks."""
    net = small

    async def catch_up(_peer: str) -> None:
        net.sync()

    async def run(tries: int) -> dict[str, Any]:
        paid: list[int] = []

        async def pay_once() -> None:
            if not paid:
                paid.append(net["consumer"].transfer(net.peer("w2"), 10, NOW_MS - DAY_MS).seq)

        async with running(net, catch_up) as nodes:
            hold_intent(nodes["provider"], net.peer("consumer"), pay_once)
            return await nodes["consumer"].lock(net.peer("provider"), PRICE, LOCK_TIMEOUT_S, tries=tries)

    once = asyncio.run(run(tries=1))
    assert once["state"] == "FAILED" and once["tries"] == 1, once
    assert once["reason"] == (
        "lock_rejected: this node's chain moved from head #1 to #2 while the witnesses judged the request bound to it"
    )
    again = asyncio.run(run(tries=3))
    assert again["state"] == "LOCKED" and again["tries"] == 2, again
    state = net["consumer"].state(net.peer("consumer"))
    assert [lock.total for lock in state.locks.values()] == [PRICE]


def test_a_lock_beyond_the_balance_is_refused_before_any_witness_is_asked(small: Network) -> None:
    """The consumer holds ``FUNDS``: a lock of one more is refused at once, with a typed code and one line saying
    what it holds and what was asked; nothing is sent to any peer and no transaction is left open anywhere."""
    net = small
    sent: list[tuple[str, str]] = []

    async def run() -> tuple[dict[str, Any], list[int]]:
        async with running(net) as nodes:
            consumer = nodes["consumer"]
            send = consumer.send

            async def recording(peer: PeerId, channel: str, data: bytes) -> None:
                sent.append((str(peer), channel))
                await send(peer, channel, data)

            consumer.send = recording  # type: ignore[method-assign]
            outcome = await consumer.lock(net.peer("provider"), FUNDS + 1, LOCK_TIMEOUT_S, PRICE, tries=3)
            await asyncio.sleep(0.1)  # anything sent would have been delivered by now
            return outcome, [runner.engine.session_count() for runner in nodes.values()]

    outcome, sessions = asyncio.run(run())
    assert outcome["state"] == "FAILED" and outcome["failure_reason"] == INSUFFICIENT_FUNDS, outcome
    assert outcome["reason"] == f"this node holds {FUNDS} available, less than the {FUNDS + 1} asked"
    assert outcome["session"] == "" and outcome["witnesses"] == [] and outcome["tries"] == 0
    assert sent == [], "a lock beyond the balance contacted a peer"
    assert sessions == [0] * len(sessions), "a transaction was left open"
    assert net["consumer"].state(net.peer("consumer")).locks == {}
    assert net["consumer"].balance(net.peer("consumer")) == FUNDS
