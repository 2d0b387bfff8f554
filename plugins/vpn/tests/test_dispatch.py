"""The vpn service's handler of tunnel datagrams on the consumer: each to the gateway it belongs to, in order.

A batch of one gateway's whole frames (the usual one) is matched once; anything else datagram by datagram.
The gateway here is a stand-in holding a recording port (the real one is a TAP in a namespace, which the lab
tests drive); the service, link and codec are the real ones.
"""

from __future__ import annotations

import types

import structlog
from omerta_vpn import codec
from omerta_vpn.service import VpnService, _Attached
from omerta_vpn.settings import parse_settings
from omerta_vpn.tunnel import ConsumerLink, FramesMode

from omerta_core.interfaces.common import PeerId

VM_ID, OTHER_VM = "0123456789abcdef0123456789abcdef", "fedcba98765432100123456789abcdef"
PROVIDER, ANOTHER, CONSUMER = (PeerId.from_public_key(bytes([i]) * 32) for i in (1, 2, 3))


class RecordingPort:
    """A batch frame port that keeps what it is given (frames behind ``offset`` cut out)."""

    mtu = 1500

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.calls = 0

    def send(self, frame: bytes) -> bool:
        self.frames.append(frame)
        return True

    def send_batch(self, frames: list[bytes], offset: int = 0) -> int:
        self.calls += 1
        self.frames += [frame[offset:] for frame in frames]
        return len(frames)

    def on_frames(self, handler: object) -> None: ...

    def on_frame_batch(self, handler: object) -> None: ...

    def close(self) -> None: ...

    def counters(self) -> dict[str, int]:
        return {}


def service_with_gateway() -> tuple[VpnService, RecordingPort]:
    node = types.SimpleNamespace(log=structlog.get_logger(), peer_id=str(CONSUMER))
    service = VpnService(node, parse_settings({}))  # type: ignore[arg-type]
    port = RecordingPort()
    gateway = types.SimpleNamespace(port=port)
    link = ConsumerLink(VM_ID, max_datagram=1400, mode=FramesMode.FIT)
    attached = _Attached(link, PROVIDER, gateway)  # type: ignore[arg-type]
    service._gateways_by_key[(PROVIDER, codec.tunnel_id(VM_ID))] = attached
    return service, port


def frame(index: int, size: int = 100) -> bytes:
    return bytes(12) + b"\x08\x00" + bytes([index % 256]) * (size - 14)


def test_a_batch_of_one_gateways_frames_reaches_its_port_whole_and_in_order() -> None:
    service, port = service_with_gateway()
    frames = [frame(i) for i in range(50)]
    service._on_datagrams(PROVIDER, [codec.encode_frame(codec.tunnel_id(VM_ID), f) for f in frames])
    assert port.frames == frames and port.calls == 1


def test_a_mixed_batch_goes_datagram_by_datagram_and_loses_nothing_of_the_gateways() -> None:
    service, port = service_with_gateway()
    tunnel, other = codec.tunnel_id(VM_ID), codec.tunnel_id(OTHER_VM)
    datas = [
        codec.encode_frame(tunnel, frame(0)),
        codec.encode_keepalive(tunnel),
        codec.encode_frame(tunnel, frame(1)),
        codec.encode_frame(other, frame(2)),  # no such tunnel here
        b"\x01\x00",  # malformed
        codec.encode_frame(tunnel, frame(3)),
    ]
    service._on_datagrams(PROVIDER, datas)
    assert port.frames == [frame(0), frame(1), frame(3)]
    assert service.counters == {"dropped_unknown_tunnel": 1, "dropped_malformed": 1}


def test_another_providers_batch_with_the_same_tunnel_number_is_not_the_gateways() -> None:
    service, port = service_with_gateway()
    datas = [codec.encode_frame(codec.tunnel_id(VM_ID), frame(i)) for i in range(10)]
    service._on_datagrams(ANOTHER, datas)
    assert port.frames == [] and service.counters == {"dropped_unknown_tunnel": 10}
