"""Spec 01 on the .omt runtime between in-process ledgers: after a lock (spec 00) the provider announces the VM,
the lock's witnesses probe the provider and the consumer and vote, the consumer ends the session, the witnesses
sign its duration and each writes a verification block, both parties record the attested end, and settlement
(spec 02) charges that duration when given none."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from omerta_ledger_omt.ledger.attestations import encode_probe
from omerta_ledger_omt.ledger.blocks import BlockKind
from omerta_ledger_omt.ledger.errors import LedgerError
from omerta_ledger_omt.ledger.omt_host import ATTEST_CHANNEL
from omerta_ledger_omt.ledger.settlement import split_settlement
from omerta_ledger_omt.ledger.transactions import TransactionRunner

from omerta_core.interfaces.common import PeerId

from .conftest import NOW_MS, Network
from .runners import runners, running

TIMEOUT_S = 60.0
#: The session's length on the runners' clock: two hours.
SESSION_MS = 7_200_000


async def fire_timeouts(nodes: dict[str, TransactionRunner], clock: Clock) -> None:
    """Every runner fires the timeouts due at the clock's (moved) time now, instead of waiting for its ticker."""
    for runner in nodes.values():
        await runner.on_timer(clock() / 1000)


class Clock:
    """The runners' clock, moved by the test."""

    def __init__(self) -> None:
        self.ms = NOW_MS

    def __call__(self) -> int:
        return self.ms


def attest_and_settle(
    net: Network, end_by: str = "consumer", duration_ms: int | None = None
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    async def run() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
        clock = Clock()
        async with running(net, now_ms=clock) as nodes:
            locked = await nodes["consumer"].lock(net.peer("provider"), 600, TIMEOUT_S)
            assert locked["state"] == "LOCKED", locked
            net.sync()  # the witnesses and the provider see the lock on the consumer's chain
            started = await nodes["provider"].start_vm(locked["session"], timeout=TIMEOUT_S)
            if started["state"] != "VM_RUNNING":
                return started, {}, None
            clock.ms += SESSION_MS
            ended = await nodes[end_by].end_vm(locked["session"], timeout=TIMEOUT_S)
            if ended["state"] not in ("ATTESTED", "SESSION_COMPLETE"):
                return started, ended, None
            other, actor = ("provider", "Provider") if end_by == "consumer" else ("consumer", "Consumer")
            session = locked["session"]  # the other party records its attestation result too
            assert await nodes[other].wait_outcome(ATTEST_CHANNEL, session, actor, {"attested"}, TIMEOUT_S)
            settled = await nodes["consumer"].settle(locked["session"], duration_ms, 100, TIMEOUT_S)
            return started, ended, settled

    return asyncio.run(run())


async def _ignore(*_args: object) -> None:
    return None


def blocks_of(net: Network, name: str, kind: BlockKind) -> list[Any]:
    return [b for b in net[name].store.blocks(net.peer(name)) if b.kind == kind]


def test_witnesses_attest_the_session_and_settlement_charges_its_duration(network: Network) -> None:
    net = network
    net.fund("consumer", 1000)
    net.sync()
    started, ended, settled = attest_and_settle(net)
    assert started["state"] == "VM_RUNNING" and started["votes"] == 5, started
    assert ended["state"] == "ATTESTED" and ended["signatures"] >= 3, ended
    assert ended["duration_ms"] == SESSION_MS and ended["termination_reason"] == "CONSUMER_REQUEST"

    witnesses = [n for n in net.ledgers if net.peer(n) in started["witnesses"]]
    assert len(witnesses) == 5
    for name in witnesses:
        [verification] = blocks_of(net, name, BlockKind.VERIFICATION)
        assert verification.payload["subject"] == net.peer("provider") and verification.payload["passed"]
        assert verification.payload["detail"] == f"CONSUMER_REQUEST duration_ms={SESSION_MS}"
    for name, role, other in (("consumer", "consumer", "provider"), ("provider", "provider", "consumer")):
        [end] = blocks_of(net, name, BlockKind.VM_SESSION)
        assert end.payload["role"] == role and end.payload["counterparty"] == net.peer(other)
        assert end.payload["event"] == "end" and end.payload["duration_ms"] == SESSION_MS

    assert settled is not None and settled["state"] == "SETTLED", settled
    split = settled["settlement"]
    assert split["duration_ms"] == SESSION_MS and split["refund"] == 400  # two hours at 100 of 600 escrowed
    expected = split_settlement(600, SESSION_MS, 100, split["provider_trust_milli"])
    assert (split["provider_payment"], split["burn"]) == (expected.provider_payment, expected.burn)


def test_the_provider_may_end_the_session(network: Network) -> None:
    net = network
    net.fund("consumer", 1000)
    net.sync()
    _started, ended, settled = attest_and_settle(net, end_by="provider")
    assert ended["state"] == "SESSION_COMPLETE" and ended["termination_reason"] == "PROVIDER_REQUEST", ended
    assert settled is not None and settled["settlement"]["duration_ms"] == SESSION_MS


def test_witnesses_refuse_to_settle_a_duration_they_did_not_attest(network: Network) -> None:
    net = network
    net.fund("consumer", 1000)
    net.sync()
    started, ended, settled = attest_and_settle(net, duration_ms=2 * SESSION_MS)  # the consumer asks for double
    assert ended["state"] == "ATTESTED" and ended["duration_ms"] == SESSION_MS, ended
    assert settled is not None and settled["state"] == "UNSETTLED", settled
    assert settled["failure_reason"] == "duration_differs_from_attestation" and settled["signatures"] == 0
    assert not blocks_of(net, "consumer", BlockKind.ESCROW_SETTLE)
    assert net["consumer"].state(net.peer("consumer")).locked == 600  # the escrow stays locked
    assert len(started["witnesses"]) == 5


def test_too_few_witnesses_leave_no_attested_duration_to_settle(network: Network) -> None:
    net = network
    net.fund("consumer", 1000)
    net.sync()

    async def run() -> tuple[dict[str, Any], dict[str, Any], str, str]:
        clock = Clock()
        async with running(net, now_ms=clock) as nodes:
            locked = await nodes["consumer"].lock(net.peer("provider"), 600, TIMEOUT_S)
            net.sync()
            for runner in nodes.values():  # three of the five witnesses go down after the lock
                if runner.ledger.me in locked["witnesses"][:3]:
                    runner.on_attest_envelope = runner.on_probe = _ignore  # type: ignore[method-assign]
            session = locked["session"]
            started = await nodes["provider"].start_vm(session, timeout=3.0)
            clock.ms += 61_000  # past CONNECTIVITY_CHECK_TIMEOUT: both votes received were positive
            await fire_timeouts(nodes, clock)
            assert await nodes["provider"].wait_outcome(ATTEST_CHANNEL, session, "Provider", {"vm_verified"}, 5.0)
            clock.ms += SESSION_MS
            ended = await nodes["consumer"].end_vm(session, timeout=3.0)
            clock.ms += 181_000  # past ATTESTATION_WAIT_TIMEOUT: two signatures never make an attestation
            await fire_timeouts(nodes, clock)
            assert await nodes["consumer"].wait_outcome(ATTEST_CHANNEL, session, "Consumer", {"unattested"}, 5.0)
            assert await nodes["provider"].wait_outcome(ATTEST_CHANNEL, session, "Provider", {"aborted"}, 5.0)
            consumer = nodes["consumer"].tables[ATTEST_CHANNEL].get(session, "Consumer")
            provider = nodes["provider"].tables[ATTEST_CHANNEL].get(session, "Provider")
            assert consumer is not None and provider is not None
            with pytest.raises(LedgerError, match="no attested duration"):
                await nodes["consumer"].settle(session, None, 100, TIMEOUT_S)
            return started, ended, consumer.state, provider.state

    started, ended, consumer_state, provider_state = asyncio.run(run())
    assert started["state"] == "WAITING_FOR_VERIFICATION" and started["votes"] == 2, started
    assert ended["state"] == "SESSION_ENDED" and ended["signatures"] == 0, ended
    assert (consumer_state, provider_state) == ("UNATTESTED", "SESSION_ABORTED")
    assert not blocks_of(net, "consumer", BlockKind.VM_SESSION)


def test_a_consumer_that_never_connects_gets_an_unreachable_attestation_of_nothing(network: Network) -> None:
    net = network
    net.fund("consumer", 1000)
    net.sync()

    async def run() -> dict[str, Any]:
        async with running(net) as nodes:
            locked = await nodes["consumer"].lock(net.peer("provider"), 600, TIMEOUT_S)
            net.sync()
            # the consumer never hears of the VM, so it tells the witnesses' probes it is not connected
            nodes["consumer"].on_attest_envelope = _ignore  # type: ignore[method-assign]
            return await nodes["provider"].start_vm(locked["session"], timeout=TIMEOUT_S)

    started = asyncio.run(run())
    assert started["state"] == "SESSION_COMPLETE" and started["votes"] == 5, started
    [end] = blocks_of(net, "provider", BlockKind.VM_SESSION)
    assert end.payload["duration_ms"] == 0 and end.payload["reason"] == "VM_UNREACHABLE"
    verifications = [b for n in net.ledgers for b in blocks_of(net, n, BlockKind.VERIFICATION)]
    assert len(verifications) == 5 and not any(b.payload["passed"] for b in verifications)


def test_malformed_probes_and_unasked_answers_are_dropped_and_counted(network: Network) -> None:
    async def run() -> int:
        runner = runners(network)["provider"]
        stranger = PeerId(network.peer("w1"))
        await runner.on_probe(stranger, b"not json")
        await runner.on_probe(stranger, encode_probe("ab" * 32, "disk", 1))
        await runner.on_probe(stranger, encode_probe("ab" * 32, "vm", 7, True))  # an answer nobody asked for
        return runner.dropped

    assert asyncio.run(run()) == 3
