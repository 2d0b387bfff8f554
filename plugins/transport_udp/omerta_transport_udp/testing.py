"""Test support: a real ``omerta node`` running the udp transport, with helpers for its control methods.

For this plugin's tests and for anything that drives udp nodes (the NAT lab, other plugins' tests).
Touches what :class:`omerta_core.testing.NodeProcess` touches.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omerta_core.testing import NodeProcess

#: The most messages one ``udp.received`` call takes from a mailbox.
MAILBOX_BATCH = 5000


class UdpNode(NodeProcess):
    """An ``omerta node`` with the udp transport, optionally inside a network namespace."""

    def __init__(self, state_dir: Path, plugins: str = "udp", *, netns: str | None = None, **options: Any) -> None:
        if netns is not None:
            options["prefix"] = ["ip", "netns", "exec", netns]
        super().__init__(state_dir, plugins, **options)

    @property
    def port(self) -> int:
        """The UDP port the transport bound (the first endpoint's)."""
        endpoint = self.status()["services"]["transport"]["udp"]["endpoints"][0]
        return int(endpoint.rsplit(":", 1)[1])

    def received(self, channel: str) -> list[bytes]:
        """Take every message kept in ``channel``'s mailbox (subscribe first with ``udp.subscribe``)."""
        out: list[bytes] = []
        while True:
            batch = self.call("udp.received", {"channel": channel, "max": MAILBOX_BATCH})["messages"]
            if not batch:
                return out
            out += [base64.b64decode(m["data_b64"]) for m in batch]

    def route_to(self, peer: str) -> str | None:
        """The transport's current route to ``peer`` (``HOST:PORT`` or ``via relay``), if any."""
        rows = self.call("udp.peers")["peers"]
        return next((row.get("route") for row in rows if row.get("peer") == peer), None)


async def wait_for(condition: Callable[[], object], timeout: float = 60.0) -> None:
    """Let the event loop run until ``condition()`` is true; an ``AssertionError`` after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
