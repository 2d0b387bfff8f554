"""In-process transaction runners for ledger tests: each ledger of a :class:`Network` gets a
:class:`TransactionRunner` whose sends are delivered to the addressed runner on the next loop turn,
on the channel they were sent on. The real transport is exercised by the node-process tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from omerta_ledger_omt.ledger.omt_host import (
    ATTEST_CHANNEL,
    AUDIT_CHANNEL,
    CHANNEL,
    CHECK_CHANNEL,
    PROBE_CHANNEL,
    QUERY_CHANNEL,
    SETTLE_CHANNEL,
)
from omerta_ledger_omt.ledger.transactions import CatchUpFunction, TransactionRunner

from omerta_core.interfaces.common import PeerId

from .conftest import NOW_MS, Network


async def in_sync(_peer: str) -> None:
    """The default catch-up: the test keeps the network's chains in sync itself (``Network.sync``)."""


def runners(
    net: Network, catch_up: CatchUpFunction | None = in_sync, now_ms: Callable[[], int] = lambda: NOW_MS
) -> dict[str, TransactionRunner]:
    by_peer: dict[str, TransactionRunner] = {}

    def sender(me: str) -> Callable[[PeerId, str, bytes], Awaitable[None]]:
        async def send(peer: PeerId, channel: str, data: bytes) -> None:
            runner = by_peer[str(peer)]
            receive = {
                CHANNEL: runner.on_envelope,
                ATTEST_CHANNEL: runner.on_attest_envelope,
                SETTLE_CHANNEL: runner.on_settle_envelope,
                PROBE_CHANNEL: runner.on_probe,
                QUERY_CHANNEL: runner.on_query_envelope,
                AUDIT_CHANNEL: runner.on_audit_envelope,
                CHECK_CHANNEL: runner.on_check_envelope,
            }[channel]
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(receive(PeerId(me), data)))

        return send

    log = structlog.get_logger()
    out = {}
    for name, ledger in net.ledgers.items():
        runner = TransactionRunner(ledger, sender(ledger.me), log, now_ms, catch_up)
        by_peer[ledger.me] = out[name] = runner
    return out


@contextlib.asynccontextmanager
async def running(
    net: Network, catch_up: CatchUpFunction | None = in_sync, now_ms: Callable[[], int] = lambda: NOW_MS
) -> AsyncIterator[dict[str, TransactionRunner]]:
    """The network's runners, started for the block and stopped after it (also on failure)."""
    nodes = runners(net, catch_up, now_ms)
    for runner in nodes.values():
        runner.start()
    try:
        yield nodes
    finally:
        for runner in nodes.values():
            await runner.stop()
