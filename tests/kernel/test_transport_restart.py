"""The kernel's ``transport.restart`` control method: which transport it restarts, and a clear refusal."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from omerta_core import config, transport_restart
from omerta_core.identity import Identity
from omerta_core.interfaces.common import Endpoint
from omerta_core.interfaces.transport import Transport, TransportRestart
from omerta_core.node import NodeContext
from omerta_core.plugins import PluginHost
from omerta_core.records import ServiceRecord


class FixedTransport:
    """A service that is not restartable (no ``restart``), as a third party's transport may be."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> dict[str, str]:
        return {}


class RestartingTransport(FixedTransport):
    """Records its restarts; moves from port 1 to port 2."""

    def __init__(self) -> None:
        self.asked: list[bool] = []

    async def restart(self, *, new_port: bool = False) -> TransportRestart:
        self.asked.append(new_port)
        return TransportRestart((Endpoint("127.0.0.1", 1),), (Endpoint("127.0.0.1", 2),), 3)

    def on_restart(self, listener: object) -> None: ...


def context(**services: object) -> NodeContext:
    ctx = NodeContext(config.load(environ={}), Identity.generate(), PluginHost(), structlog.get_logger())
    for name, service in services.items():
        record = ServiceRecord(name=name, provides=Transport, factory=lambda _n, s=service: s, description="t")
        ctx.services.add(name, record, service)
    return ctx


def test_the_default_transport_or_the_named_one_restarts() -> None:
    udp, other = RestartingTransport(), RestartingTransport()
    ctx = context(udp=udp, other=other)
    result = asyncio.run(transport_restart.restart(ctx, {"new_port": True}))
    assert result == {"before": ["127.0.0.1:1"], "after": ["127.0.0.1:2"], "moved": True, "resumed": 3}
    asyncio.run(transport_restart.restart(ctx, {"name": "other"}))
    assert udp.asked == [True] and other.asked == [False]


def test_a_transport_that_cannot_restart_alone_says_so_in_one_line() -> None:
    with pytest.raises(transport_restart.TransportNotRestartableError, match="cannot restart alone; restart the node"):
        asyncio.run(transport_restart.restart(context(fixed=FixedTransport()), {}))
