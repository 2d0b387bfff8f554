"""Channel handlers: a failing async handler is logged and counted, and a channel has one owner."""

from __future__ import annotations

import asyncio

import nacl.signing
import pytest
from omerta_transport_udp.service import UdpTransport
from structlog.testing import capture_logs

from omerta_core.errors import ConflictError
from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_core.services import acting_for

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]


async def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def started() -> UdpTransport:
    transport = UdpTransport(nacl.signing.SigningKey.generate(), hosts=["127.0.0.1"], port=0)
    await transport.start()
    return transport


async def test_an_async_handlers_exception_is_logged_with_peer_and_channel_counted_and_serving_goes_on() -> None:
    a, b = await started(), await started()
    try:
        good: list[bytes] = []

        async def failing(peer: PeerId, data: bytes) -> None:
            await asyncio.sleep(0)
            raise RuntimeError(f"cannot handle {data!r}")

        b.on_message("bad", failing)
        b.on_message("good", lambda peer, data: good.append(data))
        a.add_peer(b.peer_id, [Endpoint("127.0.0.1", b.local_endpoints()[0].port)])
        with capture_logs() as logs:
            await a.send(b.peer_id, "bad", b"x")
            await a.send(b.peer_id, "bad", b"y")
            await wait_for(lambda: b.status()["counters"].get("handler_errors") == 2)
        await a.send(b.peer_id, "good", b"still served")
        await wait_for(lambda: good == [b"still served"])
        failures = [entry for entry in logs if entry["event"] == "message handler failed"]
        assert len(failures) == 2
        assert {entry["channel"] for entry in failures} == {"bad"}
        assert {entry["peer"] for entry in failures} == {a.peer_id.short}
        assert all(entry["log_level"] == "error" for entry in failures)
    finally:
        await a.stop()
        await b.stop()


async def test_a_channel_registered_twice_is_a_conflict_naming_both_plugins() -> None:
    transport = await started()
    try:
        with acting_for("ledger"):
            transport.on_message("shared", lambda peer, data: None)
        with acting_for("chat"), pytest.raises(ConflictError) as err:
            transport.on_message("shared", lambda peer, data: None)
        assert str(err.value) == "transport channel 'shared' is registered by both ledger and chat"
    finally:
        await transport.stop()
