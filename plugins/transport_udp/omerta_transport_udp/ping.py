"""``omerta ping``: round trips to a peer through the transport, and a test message.

Every udp transport answers on the ``omerta.ping`` channel by sending the same
bytes back on ``omerta.pong``; a ping that carries a text has it logged by the
receiver (a test message a person can look for in the other node's log).
Touches only the transport it is given.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from omerta_core.control.progress import report
from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.transport import Delivery, Transport
from omerta_transport_udp.errors import TransportError

PING_CHANNEL = "omerta.ping"
PONG_CHANNEL = "omerta.pong"
NONCE_BYTES = 8
#: How long one ping waits for its echo, including setting up the session.
PING_TIMEOUT_S = 5.0
#: Longest test message carried (it goes into the receiver's log).
MAX_MESSAGE_BYTES = 512


class PingTimeoutError(TransportError):
    """A peer that did not echo a ping in time."""


class Pinger:
    """Answers pings for one transport and sends its own."""

    def __init__(self, transport: Transport, log: Any) -> None:
        self.transport = transport
        self.log = log
        self._waiting: dict[bytes, asyncio.Future[None]] = {}
        transport.on_message(PING_CHANNEL, self._answer)
        transport.on_message(PONG_CHANNEL, self._echoed)

    async def _answer(self, peer: PeerId, data: bytes) -> None:
        text = data[NONCE_BYTES : NONCE_BYTES + MAX_MESSAGE_BYTES].decode(errors="replace")
        if text:
            self.log.info("test message received", peer=peer, text=text)
        await self.transport.send(peer, PONG_CHANNEL, data, delivery=Delivery.RELIABLE)

    def _echoed(self, _peer: PeerId, data: bytes) -> None:
        waiter = self._waiting.get(data[:NONCE_BYTES])
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def ping(self, peer: PeerId, text: str = "", timeout: float = PING_TIMEOUT_S) -> float:
        """Send one ping (with ``text``, if any) and return the round trip in milliseconds."""
        message = text.encode()
        if len(message) > MAX_MESSAGE_BYTES:
            raise TransportError(f"a test message may have at most {MAX_MESSAGE_BYTES} bytes")
        nonce = os.urandom(NONCE_BYTES)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[nonce] = waiter
        started = time.monotonic()
        try:
            await self.transport.send(peer, PING_CHANNEL, nonce + message, delivery=Delivery.RELIABLE)
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError as exc:
            raise PingTimeoutError(
                f"no answer from {peer.short} within {timeout:.0f} s (is it running? try `omerta peers`)"
            ) from exc
        finally:
            self._waiting.pop(nonce, None)
        return (time.monotonic() - started) * 1000

    async def ping_many(self, peer: PeerId, count: int, text: str, route: Any) -> dict[str, Any]:
        """``count`` pings, one a second after the first, with progress notes; the path and round trips."""
        rtts: list[float] = []
        for index in range(count):
            if index:
                await asyncio.sleep(1.0)
            rtt = await self.ping(peer, text if index == 0 else "")
            rtts.append(round(rtt, 2))
            report(f"reply from {peer.short}: {rtt:.1f} ms")
        path = route()
        return {
            "peer": str(peer),
            "route": None if path is None else str(path),
            "relayed": path is not None and str(path).startswith("via "),
            "rtt_ms": rtts,
            "message": text or None,
        }
