"""The provider's keep-warm tick: it runs while tunnels carry frames, stops when they fall quiet, costs a
quiet node nothing, and the vpn service starts it from frames in either direction of a provider's tunnel.

Real event loops and the real service, tunnel core and codec; the VM's port and the transport are recorders.
"""

from __future__ import annotations

import asyncio
import time
import types
from collections.abc import Callable

import pytest
import structlog
from omerta_vpn import codec
from omerta_vpn.keep_warm import KeepWarm
from omerta_vpn.service import VpnService, _Tunnel
from omerta_vpn.settings import parse_settings
from omerta_vpn.tunnel import FramesMode, ProviderTunnel

from omerta_core.errors import ConfigError
from omerta_core.interfaces.common import PeerId

from .test_dispatch import RecordingPort, frame

VM_ID = "0123456789abcdef0123456789abcdef"
VM_MAC = "02:00:00:00:00:02"
CONSUMER, PROVIDER = (PeerId.from_public_key(bytes([i]) * 32) for i in (3, 1))


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.001)


def test_it_ticks_while_frames_are_carried_and_stops_once_they_are_not() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        warm = KeepWarm(loop, tick_s=0.002, idle_s=0.1)
        assert not warm.ticking and warm.ticks == 0  # a quiet node has no timer at all
        end = loop.time() + 0.2
        while True:  # frames every 10 ms for 0.2 s: the tick runs throughout
            last_frame = loop.time()
            warm.carried(last_frame)
            await asyncio.sleep(0.01)
            assert warm.ticking or loop.time() - last_frame >= 0.1  # (unless the loop stalled past the idle time)
            if loop.time() >= end:
                break
        await until(lambda: not warm.ticking)
        assert loop.time() - last_frame >= 0.1  # not before the idle time after the last frame
        stopped_at = warm.ticks
        assert stopped_at >= 20  # about one per 2 ms over 0.3 s, whatever the host's timer slack
        await asyncio.sleep(0.02)
        assert warm.ticks == stopped_at and not warm.ticking
        warm.carried(loop.time())  # traffic again: ticking again
        await until(lambda: warm.ticks > stopped_at)
        warm.close()
        assert not warm.ticking

    asyncio.run(main())


def test_a_tick_and_an_idle_time_must_be_positive() -> None:
    loop = asyncio.new_event_loop()
    try:
        for tick_s, idle_s in ((0, 1), (-0.005, 1), (0.005, 0)):
            with pytest.raises(ValueError):
                KeepWarm(loop, tick_s, idle_s)
    finally:
        loop.close()


def test_the_setting_defaults_to_5_ms_and_0_turns_it_off() -> None:
    assert parse_settings({}).provider_keep_warm_s == pytest.approx(0.005)
    assert parse_settings({"provider_keep_warm_ms": 0}).provider_keep_warm_s == 0
    for bad in (-1, 1001, "often"):
        with pytest.raises(ConfigError, match=r"plugins\.vpn"):
            parse_settings({"provider_keep_warm_ms": bad})


class RecordingTransport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send_datagrams(self, peer: PeerId, channel: str, datas: list[bytes]) -> None:
        self.sent += datas


def provider_service(warm: KeepWarm) -> tuple[VpnService, _Tunnel, RecordingTransport, RecordingPort]:
    node = types.SimpleNamespace(log=structlog.get_logger(), peer_id=str(PROVIDER))
    service = VpnService(node, parse_settings({}))  # type: ignore[arg-type]
    transport = RecordingTransport()
    service._transport = transport  # type: ignore[assignment]
    service._keep_warm = warm  # as start() makes it
    core = ProviderTunnel(VM_ID, VM_MAC, max_datagram=1400, now=time.monotonic(), mode=FramesMode.FIT)
    core.vm_ready(time.monotonic())
    port = RecordingPort()
    tunnel = _Tunnel(core, CONSUMER, port)  # type: ignore[arg-type]
    service._tunnels[VM_ID] = tunnel
    service._by_key[(CONSUMER, core.tunnel)] = tunnel
    return service, tunnel, transport, port


def test_the_service_keeps_warm_from_the_vms_frames_and_from_the_consumers() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        warm = KeepWarm(loop, tick_s=0.002, idle_s=0.1)
        service, tunnel, transport, port = provider_service(warm)
        service._on_datagrams(CONSUMER, [codec.encode_frame(tunnel.core.tunnel, frame(1))])  # to the VM
        assert warm.ticking and port.frames == [frame(1)]
        await until(lambda: not warm.ticking)
        vm_frame = bytes.fromhex("020000000001") + bytes.fromhex(VM_MAC.replace(":", "")) + frame(0)[12:]
        service._vm_batch_sender(tunnel)([vm_frame])  # and the VM's answer, to the consumer
        assert warm.ticking and len(transport.sent) == 1
        await until(lambda: warm.ticks > 0)
        status = service.status()
        assert status["keep_warm_ms"] == pytest.approx(5) and status["keep_warm_ticks"] == warm.ticks
        warm.close()

    asyncio.run(main())
