"""The ``vpn`` service: the asyncio adapter around the tunnel cores, on providers and consumers.

Implements :class:`omerta_core.interfaces.vpn.Vpn`. On a provider it opens each
VM's frame port (``Hypervisor.open_frame_port``), feeds the VM's frames to a
:class:`~omerta_vpn.tunnel.ProviderTunnel` and sends what it returns to that
VM's consumer, and only there, as datagrams on ``vpn.frames``; it carries out
the tunnel's pause, resume and delete actions and reports ``vm.rogue`` to the
consumer on ``vpn.control``. On a consumer it builds a gateway per rented VM and
moves frames between it and the provider. The transport and hypervisor are found
through the node; no other plugin is imported. Touches what the gateways touch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any, cast

from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.hypervisor import (
    BatchFramePort,
    FrameBatchHandler,
    FrameHandler,
    FramePort,
    Hypervisor,
    OffloadPort,
    VmState,
)
from omerta_core.interfaces.transport import Delivery, Transport
from omerta_core.interfaces.vpn import GatewayInfo, GatewayMode, RogueEvent, RogueListener, TunnelInfo
from omerta_core.node import NodeContext
from omerta_vpn import codec
from omerta_vpn.errors import ControlMessageError, GatewayError, TunnelError
from omerta_vpn.gateway import Gateway, GatewaySpec
from omerta_vpn.gateway_linux import LinuxGateway
from omerta_vpn.keep_warm import KeepWarm
from omerta_vpn.settings import MAX_MTU, Settings
from omerta_vpn.tunnel import ConsumerLink, DeleteVm, FrameRun, FramesMode, PauseVm, ProviderTunnel, ResumeVm, Rogue

#: How often tunnels are checked for a gone consumer and VMs for new tunnels.
TICK_S = 0.25
#: Rogue reports kept for ``vpn.rogue_events``.
MAX_ROGUE_EVENTS = 256
#: The largest control message accepted.
MAX_CONTROL_BYTES = 4096
#: VM states in which the VM's NIC exists (a tunnel can run).
NIC_STATES = frozenset({VmState.BOOTING, VmState.READY, VmState.PAUSED})
#: VM states after the boot: the consumer's grace runs.
RUNNING_STATES = frozenset({VmState.READY, VmState.PAUSED})


@dataclass
class _Tunnel:
    core: ProviderTunnel
    consumer: PeerId
    port: FramePort
    closing: bool = False
    #: Pause, resume and delete run one at a time, in order: a resume that overtook a
    #: pause still under way was a no-op and left the VM paused for good.
    vm_calls: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        # what the port can do: a Protocol isinstance check is slow, so once, not per frame
        self.offload = isinstance(self.port, OffloadPort)
        self.batch = isinstance(self.port, BatchFramePort)


@dataclass
class _Attached:
    link: ConsumerLink
    provider: PeerId
    gateway: Gateway
    counters: dict[str, int] = field(default_factory=dict)
    #: The gateway hands this end TCP super-frames for the VM (once the provider showed it takes them).
    offloading: bool = False

    def __post_init__(self) -> None:
        self.offload = isinstance(self.gateway.port, OffloadPort)
        self.batch = isinstance(self.gateway.port, BatchFramePort)

    @property
    def port(self) -> FramePort:
        return self.gateway.port


def _build_gateway(spec: GatewaySpec, log: Any) -> Gateway:
    if sys.platform != "linux":
        raise GatewayError(f"no consumer gateway for {sys.platform} yet")
    return LinuxGateway(spec, log)


class VpnService:
    """The node's VPN: provider tunnels and consumer gateways."""

    def __init__(self, node: NodeContext, settings: Settings) -> None:
        self.node = node
        self.settings = settings
        self.log = node.log.bind(backend="vpn")
        self.self_peer = PeerId(node.peer_id)
        self._transport: Transport | None = None
        self._tunnels: dict[str, _Tunnel] = {}
        #: Keyed by (peer, tunnel): a PeerId is a str, so its hash and equality are the text's.
        self._by_key: dict[tuple[str, int], _Tunnel] = {}
        self._gateways: dict[str, _Attached] = {}
        self._gateways_by_key: dict[tuple[str, int], _Attached] = {}
        self._rogue_listeners: list[RogueListener] = []
        self.rogue_events: deque[dict[str, Any]] = deque(maxlen=MAX_ROGUE_EVENTS)
        self.counters: dict[str, int] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._max_datagram = 0
        self._keep_warm: KeepWarm | None = None

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        transport = self.node.service(Transport)
        self._transport = transport
        self._max_datagram = min(transport.max_datagram_size(), codec.MAX_FRAME + codec.HEADER_BYTES)
        transport.on_datagrams(codec.FRAMES_CHANNEL, self._on_datagrams)
        transport.on_message(codec.CONTROL_CHANNEL, self._on_control)
        # an earlier run's gateways ended with it (their helpers exit when the node does); only files remain
        shutil.rmtree(self._gateways_dir(), ignore_errors=True)
        self._ticker = asyncio.create_task(self._tick_forever())
        if self.settings.provider_keep_warm_s > 0:
            self._keep_warm = KeepWarm(asyncio.get_running_loop(), self.settings.provider_keep_warm_s)
        self.log.info(
            "vpn ready",
            frames=self.settings.frames.value,
            guest_mtu=self.guest_mtu,
            provider_keep_warm_ms=self.settings.provider_keep_warm_s * 1000,
        )

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for vm_id in list(self._tunnels):
            await self.stop_tunnel(vm_id)
        await asyncio.gather(*(self.detach_gateway(vm_id) for vm_id in list(self._gateways)), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if self._keep_warm is not None:
            self._keep_warm.close()

    @property
    def guest_mtu(self) -> int:
        if self.settings.frames is FramesMode.FRAGMENT:
            return MAX_MTU
        return min(MAX_MTU, codec.fit_mtu(self._max_datagram))

    def status(self) -> dict[str, Any]:
        return {
            "frames": self.settings.frames.value,
            "guest_mtu": self.guest_mtu,
            "tunnels": [_tunnel_json(t) for t in self.tunnels()],
            "gateways": [_gateway_json(g) for g in self.gateways()],
            "rogue_events": len(self.rogue_events),
            "keep_warm_ms": self.settings.provider_keep_warm_s * 1000,
            "keep_warm_ticks": self._keep_warm.ticks if self._keep_warm is not None else 0,
            "counters": dict(sorted(self.counters.items())),
        }

    # -- provider: tunnels --------------------------------------------------------------

    def _hypervisor(self) -> Hypervisor | None:
        return self.node.find(Hypervisor)

    async def start_tunnel(self, vm_id: str, consumer: PeerId) -> TunnelInfo:
        consumer = PeerId(consumer)
        running = self._tunnels.get(vm_id)
        if running is not None:
            if running.consumer != consumer:
                raise TunnelError(f"VM {vm_id} already tunnels to {running.consumer.short}, not {consumer.short}")
            return self._tunnel_info(running)
        if consumer == self.self_peer:
            raise TunnelError(f"VM {vm_id} belongs to this node itself; a tunnel needs another consumer")
        hypervisor = self._hypervisor()
        if hypervisor is None:
            raise TunnelError("this node runs no hypervisor: it has no VMs to tunnel")
        info = next((vm for vm in hypervisor.list() if vm.vm_id == vm_id), None)
        if info is None or info.mac is None:
            raise TunnelError(f"no VM {vm_id[:64]!r} with a NIC on this node")
        key = (consumer, codec.tunnel_id(vm_id))
        if key in self._by_key:
            raise TunnelError(f"VM {vm_id} has the tunnel id of VM {self._by_key[key].core.vm_id} for one consumer")
        port = await hypervisor.open_frame_port(vm_id)
        if vm_id in self._tunnels:  # started meanwhile by another caller
            port.close()
            return await self.start_tunnel(vm_id, consumer)
        core = ProviderTunnel(
            vm_id,
            info.mac,
            max_datagram=self._max_datagram,
            now=time.monotonic(),
            mode=self.settings.frames,
            timing=self.settings.timing,
            policy=self.settings.rogue_policy,
            rogue_threshold=self.settings.rogue_threshold,
        )
        if info.state in RUNNING_STATES:
            core.vm_ready(time.monotonic())
        tunnel = _Tunnel(core, consumer, port)
        self._tunnels[vm_id] = tunnel
        self._by_key[key] = tunnel
        if tunnel.batch:  # a burst of frames read at once goes through the tunnel and out in one call
            cast(BatchFramePort, port).on_frame_batch(self._vm_batch_sender(tunnel))
        else:
            port.on_frames(self._vm_sender(tunnel))
        if tunnel.offload:  # a port that yields TCP super-frames: carried whole, in pieces
            cast(OffloadPort, port).on_offload(self._vm_sender(tunnel, tunnel.core.from_vm_offload))
        self.log.info("tunnel started", vm_id=vm_id, consumer=consumer.short, guest_mtu=port.mtu)
        return self._tunnel_info(tunnel)

    async def stop_tunnel(self, vm_id: str) -> None:
        tunnel = self._tunnels.pop(vm_id, None)
        if tunnel is None:
            return
        self._by_key.pop((tunnel.consumer, tunnel.core.tunnel), None)
        tunnel.port.close()
        self.log.info("tunnel stopped", vm_id=vm_id, consumer=tunnel.consumer.short, **dict(tunnel.core.counters))

    def tunnels(self) -> list[TunnelInfo]:
        return [self._tunnel_info(t) for t in self._tunnels.values()]

    def _tunnel_info(self, tunnel: _Tunnel) -> TunnelInfo:
        counters = {**tunnel.port.counters(), **tunnel.core.counters}
        return TunnelInfo(tunnel.core.vm_id, tunnel.consumer, tunnel.core.state(time.monotonic()), counters)

    def _sender(
        self, peer: PeerId, encode: Callable[[bytes, float], list[bytes]], warm: KeepWarm | None = None
    ) -> FrameHandler:
        """A frame port's handler: each frame through ``encode``, its datagrams to ``peer`` and nowhere else
        (and ``warm`` told of it, on a provider)."""
        transport = self._transport
        assert transport is not None
        send = transport.send_datagrams
        channel = codec.FRAMES_CHANNEL

        def carry(frame: bytes) -> None:
            now = time.monotonic()
            datagrams = encode(frame, now)
            if datagrams:  # all the pieces of an offloaded frame in one call
                send(peer, channel, datagrams)
            if warm is not None:
                warm.carried(now)

        return carry

    def _vm_sender(self, tunnel: _Tunnel, encode: Callable[[bytes, float], list[bytes]] | None = None) -> FrameHandler:
        carry = self._sender(tunnel.consumer, encode or tunnel.core.from_vm, self._keep_warm)

        def from_vm(frame: bytes) -> None:
            carry(frame)
            if tunnel.core.actions:
                self._act(tunnel)

        return from_vm

    def _batch_sender(
        self,
        peer: PeerId,
        encode: Callable[[Sequence[bytes], float], list[bytes]],
        warm: KeepWarm | None = None,
    ) -> FrameBatchHandler:
        """A batch port's handler: a burst through ``encode``, its datagrams to ``peer`` in one call (and
        ``warm`` told of it, on a provider)."""
        transport = self._transport
        assert transport is not None
        send = transport.send_datagrams
        channel = codec.FRAMES_CHANNEL

        def carry(frames: list[bytes]) -> None:
            now = time.monotonic()
            datagrams = encode(frames, now)
            if datagrams:
                send(peer, channel, datagrams)
            if warm is not None:
                warm.carried(now)

        return carry

    def _vm_batch_sender(self, tunnel: _Tunnel) -> FrameBatchHandler:
        carry = self._batch_sender(tunnel.consumer, tunnel.core.from_vm_batch, self._keep_warm)

        def from_vm(frames: list[bytes]) -> None:
            carry(frames)
            if tunnel.core.actions:
                self._act(tunnel)

        return from_vm

    def _act(self, tunnel: _Tunnel) -> None:
        actions, tunnel.core.actions = tunnel.core.actions, []
        vm_id = tunnel.core.vm_id
        for action in actions:
            if isinstance(action, Rogue):
                self._report_rogue(tunnel, action)
            elif isinstance(action, PauseVm):
                self._spawn(self._vm_call(tunnel, "pause", action.reason))
            elif isinstance(action, ResumeVm):
                self._spawn(self._vm_call(tunnel, "resume", "consumer-back"))
            elif isinstance(action, DeleteVm):
                tunnel.closing = True
                tunnel.port.on_frames(None)
                if tunnel.batch:
                    cast(BatchFramePort, tunnel.port).on_frame_batch(None)
                if tunnel.offload:
                    cast(OffloadPort, tunnel.port).on_offload(None)
                self._spawn(self._delete_vm(vm_id, action.reason))

    def _report_rogue(self, tunnel: _Tunnel, rogue: Rogue) -> None:
        event = {"vm_id": tunnel.core.vm_id, "reason": rogue.reason, "count": rogue.count, "action": rogue.action}
        self.rogue_events.append(
            {"type": codec.ROGUE_MESSAGE, **event, "consumer": str(tunnel.consumer), "at": time.time()}
        )
        self.log.warning(codec.ROGUE_MESSAGE, consumer=tunnel.consumer.short, **event)
        if self._transport is not None:
            data = codec.encode_rogue(tunnel.core.vm_id, rogue.reason, rogue.count, rogue.action)
            self._spawn(self._transport.send(tunnel.consumer, codec.CONTROL_CHANNEL, data, delivery=Delivery.RELIABLE))

    async def _vm_call(self, tunnel: _Tunnel, method: str, reason: str) -> None:
        hypervisor = self._hypervisor()
        if hypervisor is None:
            return
        vm_id = tunnel.core.vm_id
        async with tunnel.vm_calls:
            if tunnel.closing:
                return
            self.log.warning(f"vm {method}", vm_id=vm_id, reason=reason)
            await getattr(hypervisor, method)(vm_id)

    async def _delete_vm(self, vm_id: str, reason: str) -> None:
        self.log.warning("vm delete", vm_id=vm_id, reason=reason)
        await self.stop_tunnel(vm_id)
        hypervisor = self._hypervisor()
        if hypervisor is not None:
            await hypervisor.destroy(vm_id)

    # -- consumer: gateways --------------------------------------------------------------

    async def attach_gateway(self, vm_id: str, provider: PeerId, *, mode: GatewayMode | None = None) -> GatewayInfo:
        provider = PeerId(provider)
        mode = mode or self.settings.gateway_mode
        attached = self._gateways.get(vm_id)
        if attached is not None:
            if attached.provider != provider:
                raise GatewayError(f"VM {vm_id} has a gateway for provider {attached.provider.short} already")
            return attached.gateway.info()
        tunnel = codec.tunnel_id(vm_id)
        if (provider, tunnel) in self._gateways_by_key:
            raise GatewayError(f"VM {vm_id} has the tunnel id of another VM of the same provider")
        spec = GatewaySpec(
            vm_id=vm_id,
            provider=provider,
            mode=mode,
            subnet=self.settings.subnet,
            mtu=self.guest_mtu,
            directory=self._gateways_dir() / vm_id,
            upstream_dns=self.settings.upstream_dns,
        )
        gateway = _build_gateway(spec, self.log)
        await gateway.start()
        link = ConsumerLink(
            vm_id, max_datagram=self._max_datagram, mode=self.settings.frames, timing=self.settings.timing
        )
        attached = _Attached(link, provider, gateway)
        self._gateways[vm_id] = attached
        self._gateways_by_key[(provider, tunnel)] = attached
        if attached.batch:
            cast(BatchFramePort, gateway.port).on_frame_batch(self._batch_sender(provider, link.from_gateway_batch))
        else:
            gateway.port.on_frames(self._sender(provider, link.from_gateway))
        if attached.offload:  # none come before allow_offloads(), once the provider has shown it takes them
            cast(OffloadPort, gateway.port).on_offload(self._sender(provider, link.from_gateway_offload))
        self._keep_alive(provider, link, time.monotonic())
        return gateway.info()

    async def detach_gateway(self, vm_id: str) -> None:
        attached = self._gateways.pop(vm_id, None)
        if attached is None:
            return
        self._gateways_by_key.pop((attached.provider, attached.link.tunnel), None)
        await attached.gateway.stop()
        self.log.info("gateway detached", vm_id=vm_id, provider=attached.provider.short, **dict(attached.link.counters))

    def _gateways_dir(self) -> Path:
        return self.node.plugin_state_dir("vpn") / "gateways"

    def gateways(self) -> list[GatewayInfo]:
        infos = []
        for attached in self._gateways.values():
            info = attached.gateway.info()
            infos.append(GatewayInfo(**{**vars(info), "counters": {**info.counters, **attached.link.counters}}))
        return infos

    def on_rogue(self, listener: RogueListener) -> None:
        self._rogue_listeners.append(listener)

    def _keep_alive(self, peer: PeerId, end: ProviderTunnel | ConsumerLink, now: float) -> None:
        """One end of a tunnel: its keepalive when due, and a new handshake when the other end went silent."""
        transport = self._transport
        if transport is None:
            return
        datagram = end.keepalive_due(now)
        if datagram is not None:
            transport.send_datagram(peer, codec.FRAMES_CHANNEL, datagram)
        if end.reconnect_due(now):
            self._count("reconnects")
            self.log.info("tunnel peer silent; reconnecting", peer=peer.short, silent_s=_silent_for(end, now))
            transport.reconnect(peer)

    # -- the transport's side ----------------------------------------------------------------

    def _on_datagrams(self, peer: PeerId, datas: list[bytes]) -> None:
        """Tunnel datagrams that arrived together: each to the end it belongs to, found by (sender, tunnel)
        before it is decoded; a run of one gateway's datagrams goes to its link, and their frames to its
        TAP, together. A batch that is all one gateway's, one kind (the usual one: its frames at saturation)
        is matched once, its headers compared in C, rather than datagram by datagram."""
        now = time.monotonic()
        header = datas[0][: codec.HEADER_BYTES] if datas else b""
        if len(header) == codec.HEADER_BYTES and all(map(bytes.startswith, datas, repeat(header))):
            attached = self._gateways_by_key.get((peer, int.from_bytes(header[1:], "big")))
            if attached is not None:
                self._from_provider(attached, datas, now)
                return
        attached = None
        attached_tunnel = -1
        run: list[bytes] = []
        for data in datas:
            tunnel_id = int.from_bytes(data[1 : codec.HEADER_BYTES], "big")
            if attached is not None:
                if tunnel_id == attached_tunnel:
                    run.append(data)
                    continue
                self._from_provider(attached, run, now)
                attached, run = None, []
            key = (peer, tunnel_id)
            attached = self._gateways_by_key.get(key)
            if attached is not None:
                attached_tunnel = tunnel_id
                run.append(data)
                continue
            try:
                tunnel = self._by_key.get(key)
                if tunnel is not None:
                    self._from_consumer(tunnel, data, now)
                    continue
                codec.decode(data)
            except codec.CodecError:
                self._count("dropped_malformed")
                continue
            self._count("dropped_unknown_tunnel")
        if attached is not None:
            self._from_provider(attached, run, now)

    def _from_provider(self, attached: _Attached, datas: list[bytes], now: float) -> None:
        received = attached.link.receive_batch(datas, now)
        if received.malformed:
            self.counters["dropped_malformed"] = self.counters.get("dropped_malformed", 0) + received.malformed
        for run in received.runs:
            if type(run) is FrameRun:
                self._deliver_batch(attached, run)
            else:  # an offloaded frame: after the frames before it
                self._deliver(attached, cast(codec.Offloaded, run))
        if received.offloaded and not attached.offloading and attached.link.provider_takes_offloads:
            self._allow_offloads(attached)

    def _from_consumer(self, tunnel: _Tunnel, data: bytes, now: float) -> None:
        if self._keep_warm is not None:
            self._keep_warm.carried(now)
        frame = tunnel.core.receive(data, now)
        if frame is not None and not tunnel.closing:
            self._deliver(tunnel, frame)
        if tunnel.core.actions:
            self._act(tunnel)

    def _deliver_batch(self, attached: _Attached, run: FrameRun) -> None:
        if not run.frames:
            return
        if attached.batch:
            cast(BatchFramePort, attached.port).send_batch(run.frames, run.offset)
        else:
            for frame in run.cut():
                attached.port.send(frame)

    def _deliver(self, end: _Tunnel | _Attached, frame: bytes | codec.Offloaded) -> None:
        if isinstance(frame, bytes):
            end.port.send(frame)
        elif end.offload:
            cast(OffloadPort, end.port).send_offload(frame.data)
        else:
            self._count("dropped_offload")  # this end cannot hand the kernel an offloaded frame

    def _allow_offloads(self, attached: _Attached) -> None:
        """The provider takes offloaded frames: let the gateway hand the tunnel TCP super-frames for the VM."""
        attached.offloading = True
        if not attached.offload:
            return
        try:
            attached.gateway.allow_offloads()
        except OSError as exc:
            self.log.warning("gateway offloads refused", vm_id=attached.link.vm_id, error=str(exc))
            return
        self.log.info("gateway offloads on", vm_id=attached.link.vm_id, provider=attached.provider.short)

    def _on_control(self, peer: PeerId, data: bytes) -> None:
        try:
            event = _parse_rogue(peer, data)
        except ControlMessageError as exc:
            self._count("dropped_bad_control")
            self.log.info("bad vpn control message", peer=peer.short, error=str(exc))
            return
        attached = self._gateways.get(event.vm_id)
        if attached is None or attached.provider != peer:
            self._count("dropped_unknown_tunnel")
            return
        self.rogue_events.append({"type": codec.ROGUE_MESSAGE, **vars(event), "provider": str(peer), "at": time.time()})
        self.log.warning(
            "vm.rogue reported",
            vm_id=event.vm_id,
            provider=peer.short,
            reason=event.reason,
            count=event.count,
            action=event.action,
        )
        for listener in self._rogue_listeners:
            try:
                listener(event)
            except Exception:
                self.log.exception("rogue listener failed", vm_id=event.vm_id)

    # -- time ------------------------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                await self._tick()
            except Exception:
                self.log.exception("vpn tick failed")

    async def _tick(self) -> None:
        now = time.monotonic()
        for tunnel in list(self._tunnels.values()):
            tunnel.core.tick(now)
            if tunnel.core.actions:
                self._act(tunnel)
            if not tunnel.closing:
                self._keep_alive(tunnel.consumer, tunnel.core, now)
        for attached in list(self._gateways.values()):
            self._keep_alive(attached.provider, attached.link, now)
        hypervisor = self._hypervisor()
        if hypervisor is None:
            return
        vms = {vm.vm_id: vm for vm in hypervisor.list()}
        for vm_id, tunnel in list(self._tunnels.items()):
            if vm_id in vms and vms[vm_id].state in RUNNING_STATES:
                tunnel.core.vm_ready(now)
            if (vm_id not in vms or vms[vm_id].state not in NIC_STATES) and not tunnel.closing:
                await self.stop_tunnel(vm_id)
        if not self.settings.auto_tunnel:
            return
        for vm in vms.values():
            if vm.vm_id not in self._tunnels and vm.state in NIC_STATES and vm.consumer != self.self_peer:
                try:
                    await self.start_tunnel(vm.vm_id, vm.consumer)
                except Exception as exc:
                    self.log.warning("tunnel could not start", vm_id=vm.vm_id, error=str(exc))

    # -- helpers -----------------------------------------------------------------------------------

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def _spawn(self, awaitable: Any) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._tasks.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                self.log.warning("vpn action failed", error=str(finished.exception()))

        task.add_done_callback(done)


def _silent_for(end: ProviderTunnel | ConsumerLink, now: float) -> float | None:
    heard = end.watch.last_heard
    return None if heard is None else round(now - heard, 1)


def _parse_rogue(peer: PeerId, data: bytes) -> RogueEvent:
    if len(data) > MAX_CONTROL_BYTES:
        raise ControlMessageError(f"control messages have at most {MAX_CONTROL_BYTES} bytes")
    try:
        message = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ControlMessageError("a control message is not JSON") from exc
    if not isinstance(message, dict) or message.get("type") != codec.ROGUE_MESSAGE:
        raise ControlMessageError("unknown control message")
    fields = {"vm_id": str, "reason": str, "count": int, "action": str}
    for name, kind in fields.items():
        if not isinstance(message.get(name), kind) or isinstance(message.get(name), bool):
            raise ControlMessageError(f"vm.rogue needs {name} ({kind.__name__})")
    return RogueEvent(
        vm_id=message["vm_id"][:64],
        provider=peer,
        reason=message["reason"][:64],
        count=message["count"],
        action=message["action"][:16],
    )


def _tunnel_json(info: TunnelInfo) -> dict[str, Any]:
    return {"vm_id": info.vm_id, "consumer": str(info.consumer), "state": info.state.value, "counters": info.counters}


def _gateway_json(info: GatewayInfo) -> dict[str, Any]:
    return {
        "vm_id": info.vm_id,
        "provider": str(info.provider),
        "mode": info.mode.value,
        "vm_address": info.vm_address,
        "gateway_address": info.gateway_address,
        "prefix_len": info.prefix_len,
        "mtu": info.mtu,
        "enter": list(info.enter),
        "counters": info.counters,
    }
