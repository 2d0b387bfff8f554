"""Keeps a provider's CPU ready for its tunnels' next frame while they are in use.

A CPU left idle for tens of milliseconds answers the next frame slowly: on a
virtual machine's vCPU the host has descheduled it, on bare metal it sleeps in
a deep C-state, and either way the caches are cold. An interactive guest (a
shell, a ping every 20 ms) pays that on each of its frames. While a tunnel has
carried a frame within :data:`IDLE_S`, :class:`KeepWarm` wakes the event loop
every ``tick_s`` with nothing to do, so the CPU never sleeps that long; a node
whose tunnels are quiet does not tick at all (``docs/vpn.md``, "Keeping the
provider's CPU ready"). Touches only the event loop it is given.
"""

from __future__ import annotations

import asyncio

#: Ticking stops this long after the last frame a tunnel carried.
IDLE_S = 1.0


class KeepWarm:
    """Ticks ``loop`` every ``tick_s`` until :data:`IDLE_S` after the last :meth:`carried`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tick_s: float, idle_s: float = IDLE_S) -> None:
        if tick_s <= 0 or idle_s <= 0:
            raise ValueError("a keep-warm tick and its idle time must be positive")
        self._loop = loop
        self._tick_s = tick_s
        self._idle_s = idle_s
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None
        #: Ticks so far (a counter for the service's status).
        self.ticks = 0

    @property
    def ticking(self) -> bool:
        return self._timer is not None

    def carried(self, now: float) -> None:
        """A tunnel carried a frame at ``now`` (the loop's clock, ``time.monotonic``): tick until idle."""
        self._last = now
        if self._timer is None:
            self._timer = self._loop.call_later(self._tick_s, self._tick)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        if self._loop.time() - self._last >= self._idle_s:
            self._timer = None
            return
        self.ticks += 1
        self._timer = self._loop.call_later(self._tick_s, self._tick)
