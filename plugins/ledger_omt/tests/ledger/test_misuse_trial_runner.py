"""Spec 01's misuse trial between in-process runners: the vote threshold (4 of 5), with lying witnesses.

Honest witnesses acquit evidence under the rule's count; witnesses made to vote guilty whatever the
evidence shows abort the session only when they are at least ``MISUSE_THRESHOLD`` (0.67) of the lock's
five witnesses: three liars do not convict, four do.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from omerta_ledger_omt.ledger.blocks import BlockKind
from omerta_ledger_omt.ledger.omt_host import ATTEST_CHANNEL
from omerta_ledger_omt.ledger.transactions import TransactionRunner
from omerta_ledger_omt.omt.runtime import Envelope

from .conftest import NOW_MS, Network
from .runners import running

TIMEOUT_S = 60.0


def always_guilty(runner: TransactionRunner) -> None:
    """Make ``runner``'s witness vote guilty on any evidence."""

    def judge(envelope: Envelope) -> None:
        runner.observations.setdefault(envelope.session, {})["misuse"] = True

    runner._judge_accusation = judge  # type: ignore[method-assign]


def trial(net: Network, liars: int) -> tuple[dict[str, Any], list[str]]:
    async def run() -> tuple[dict[str, Any], list[str]]:
        async with running(net) as nodes:
            locked = await nodes["consumer"].lock(net.peer("provider"), 600, TIMEOUT_S)
            assert locked["state"] == "LOCKED", locked
            net.sync()
            session = locked["session"]
            started = await nodes["provider"].start_vm(session, timeout=TIMEOUT_S)
            assert started["state"] == "VM_RUNNING", started
            witnesses = [name for name in net.ledgers if net.peer(name) in started["witnesses"]]
            for name in witnesses[:liars]:
                always_guilty(nodes[name])
            weak = {"version": 1, "session_id": session, "consumer": net.peer("consumer"), "rule": "host_probe",
                    "samples": [{"time_ms": NOW_MS, "count": 3}]}  # fmt: skip
            result = await nodes["provider"].accuse(session, weak, timeout=TIMEOUT_S)
            for name in witnesses:  # every witness has written its verdict by the time the trial is decided
                instance = nodes[name].engine.instance(ATTEST_CHANNEL, session, "Witness")
                assert instance is not None and instance.store.get("misuse_verdict"), name
            return result, witnesses

    return asyncio.run(run())


@pytest.mark.parametrize(("liars", "verdict"), [(0, "acquitted"), (3, "acquitted"), (4, "guilty")])
def test_four_of_five_witnesses_must_find_misuse(network: Network, liars: int, verdict: str) -> None:
    net = network
    net.fund("consumer", 1000)
    net.sync()
    result, witnesses = trial(net, liars)
    assert result["verdict"] == verdict and result["guilty_votes"] == liars, result
    if verdict == "guilty":
        assert result["state"] == "SESSION_COMPLETE" and result["termination_reason"] == "CONSUMER_MISUSE", result
    else:
        assert result["state"] == "VM_RUNNING" and result["votes"] == 5, result
    loser = net.peer("consumer" if verdict == "guilty" else "provider")
    for name in witnesses:
        verdicts = [
            b.payload
            for b in net[name].store.blocks(net.peer(name))
            if b.kind == BlockKind.VERIFICATION and " evidence=" in b.payload.get("detail", "")
        ]
        assert [(v["subject"], v["passed"]) for v in verdicts] == [(loser, False)], name
