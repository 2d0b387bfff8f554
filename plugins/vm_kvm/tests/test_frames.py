"""The service in-process: the frame port carries the guest's Ethernet frames; the guest has no other network."""

from __future__ import annotations

import asyncio
import struct
import subprocess
from pathlib import Path

import pytest
import structlog
from omerta_vm_kvm import libvirt_host
from omerta_vm_kvm.errors import HypervisorUnavailableError
from omerta_vm_kvm.service import KvmHypervisor, guest_mac, namespace_name, tap_name
from omerta_vm_kvm.settings import parse_settings

from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.hypervisor import FramePort, Hypervisor, VmRequest, VmState

pytestmark = [pytest.mark.root, pytest.mark.slow]

CONSUMER = PeerId.from_public_key(bytes(32))
ETH_P_IP = 0x0800
DHCP_SERVER_PORT = 67


def is_dhcp_discover_from(frame: bytes, mac: bytes) -> bool:
    """An IPv4/UDP frame from ``mac`` to port 67 (what the guest's udhcpc sends at boot)."""
    if len(frame) < 42 or frame[6:12] != mac or frame[12:14] != struct.pack(">H", ETH_P_IP):
        return False
    header_len = (frame[14] & 0x0F) * 4
    udp = 14 + header_len
    return frame[23] == 17 and struct.unpack(">H", frame[udp + 2 : udp + 4])[0] == DHCP_SERVER_PORT


def links_in(namespace: str) -> list[str]:
    out = subprocess.run(["ip", "-n", namespace, "-o", "link"], capture_output=True, text=True, check=True).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())


def test_the_frame_port_carries_the_guests_frames_and_its_nic_is_alone(images_dir: Path, tmp_path: Path) -> None:
    settings = parse_settings({"images_dir": str(images_dir), "domain_type": "qemu"}, tmp_path)
    service = KvmHypervisor(settings, tmp_path, structlog.get_logger())

    async def scenario() -> None:
        await service.start()
        try:
            assert isinstance(service, Hypervisor)
            request = VmRequest(consumer=CONSUMER, image="omk-test", memory_mib=128, disk_gib=1, lease_seconds=60)
            info = await service.create(request)
            assert info.state is VmState.READY and info.mac == guest_mac(info.vm_id)
            namespace = namespace_name(info.vm_id)
            assert links_in(namespace) == ["lo", tap_name(info.vm_id)]
            assert sysctl_in(namespace, "net.ipv6.conf.all.disable_ipv6") == "1"
            assert addresses_in(namespace) == []
            port = await service.open_frame_port(info.vm_id)
            assert isinstance(port, FramePort) and port.mtu == settings.nic_mtu
            frames: asyncio.Queue[bytes] = asyncio.Queue()
            port.on_frames(frames.put_nowait)
            mac = bytes.fromhex(guest_mac(info.vm_id).replace(":", ""))

            async def discover() -> bytes:
                while not is_dhcp_discover_from(frame := await frames.get(), mac):
                    pass
                return frame

            await asyncio.wait_for(discover(), 60)
            assert port.send(b"\xff" * 6 + b"\x02" + bytes(5) + b"\x88\xb5" + bytes(50))
            assert not port.send(bytes(port.mtu + 15))
            counters = port.counters()
            assert counters["from_vm_frames"] >= 1 and counters["to_vm_frames"] == 1 and counters["dropped_size"] == 1
            paused = await service.pause(info.vm_id)
            assert paused.state is VmState.PAUSED
            assert (await service.resume(info.vm_id)).state is VmState.READY
            port.close()
            await service.destroy(info.vm_id)
            assert service.list() == []
        finally:
            await service.stop()

    asyncio.run(scenario())


def sysctl_in(namespace: str, key: str) -> str:
    argv = ["ip", "netns", "exec", namespace, "sysctl", "-n", key]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def addresses_in(namespace: str) -> list[str]:
    out = subprocess.run(["ip", "-n", namespace, "-o", "addr"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if line.split()[1] != "lo"]


def test_a_missing_libvirt_is_a_refusal_not_a_fake_vm(tmp_path: Path) -> None:
    uri = f"qemu+unix:///system?socket={tmp_path}/no-such-socket"
    reason = libvirt_host.unusable_reason(uri)
    assert reason is not None and "cannot reach libvirt" in reason
    settings = parse_settings({"libvirt_uri": uri}, tmp_path)
    service = KvmHypervisor(settings, tmp_path, structlog.get_logger())
    with pytest.raises(HypervisorUnavailableError, match="cannot reach libvirt"):
        asyncio.run(service.start())
