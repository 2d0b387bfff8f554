"""The runner applies each action on its own: a send that fails is logged and counted, and the ticker keeps
firing other sessions' timeouts (it used to die with the first failed send, stopping every timeout)."""

from __future__ import annotations

import asyncio
import time

import structlog
from omerta_ledger_omt.ledger.engine import Spec, TransactionEngine
from omerta_ledger_omt.ledger.omt_host import CHANNEL
from omerta_ledger_omt.ledger.transactions import TransactionRunner
from omerta_ledger_omt.omt.parser import parse
from omerta_ledger_omt.omt.runtime import Program

from omerta_core.interfaces.common import PeerId

from .conftest import Network

#: A consumer that, when its short wait times out, nudges its peer and gives up.
SPEC = """
parameters ( WAIT = 0.05 seconds )
message NUDGE from Consumer to [Provider] ( n uint )
actor Consumer (
    store ( peer peer_id  n uint )
    trigger go(peer peer_id, n uint) in [IDLE]
    state IDLE initial
    state WAITING
    state GAVE_UP terminal
    IDLE -> WAITING on go ( store peer, n )
    WAITING -> GAVE_UP on timeout(WAIT) ( SEND(peer, NUDGE) )
)
actor Provider (
    state IDLE initial
)
"""
WAIT_S = 10.0


def test_a_failing_send_does_not_stop_another_sessions_timeout(network: Network) -> None:
    broken, working = network.peer("w1"), network.peer("w2")
    delivered: list[str] = []

    async def send(peer: PeerId, _channel: str, _data: bytes) -> None:
        if peer == broken:
            raise ConnectionError("no route to the peer")
        delivered.append(str(peer))

    async def run() -> TransactionRunner:
        ledger = network["consumer"]
        spec = Spec("test", "", CHANNEL, {"Consumer": {"GAVE_UP": "gave_up"}})
        engine = TransactionEngine(ledger, specs={CHANNEL: spec}, programs={CHANNEL: Program.from_module(parse(SPEC))})
        runner = TransactionRunner(ledger, send, structlog.get_logger(), lambda: int(time.time() * 1000), engine=engine)
        runner.start()
        try:
            first, actions = engine.open(CHANNEL, "Consumer", "go", {"peer": broken, "n": 1}, runner._now())
            await runner._apply(actions)
            assert await runner.wait_outcome(CHANNEL, first, "Consumer", {"gave_up"}, WAIT_S)
            second, actions = engine.open(CHANNEL, "Consumer", "go", {"peer": working, "n": 2}, runner._now())
            await runner._apply(actions)
            assert await runner.wait_outcome(CHANNEL, second, "Consumer", {"gave_up"}, WAIT_S)
        finally:
            await runner.stop()
        return runner

    runner = asyncio.run(run())
    assert delivered == [working]
    assert runner.action_failures == 1
