"""A TAP port in a namespace of its own: finished frames pass as frames, offloaded ones whole (once its
offloads are on), bursts as batches."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

#: Runs in a fresh user + network namespace: a TAP with offloads, a UDP socket behind it, both directions.
SCRIPT = r"""
import asyncio, json, socket, subprocess
from omerta_vpn import codec
from omerta_core.interfaces.hypervisor import OffloadPort
from omerta_vpn.tap import TapFramePort
from omerta_vpn.tun import open_tap

OURS, THEIRS = "198.18.254.1", "198.18.254.2"
MAC_OURS, MAC_THEIRS = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")

def ipv4_udp(payload: bytes) -> bytes:
    udp_length = 8 + len(payload)
    header = bytearray(20)
    header[0], header[8], header[9] = 0x45, 64, 17
    header[2:4] = (20 + udp_length).to_bytes(2, "big")
    header[12:16], header[16:20] = socket.inet_aton(THEIRS), socket.inet_aton(OURS)
    total = sum(int.from_bytes(header[i:i + 2], "big") for i in range(0, 20, 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    header[10:12] = (~total & 0xFFFF).to_bytes(2, "big")
    udp = (4000).to_bytes(2, "big") + (5000).to_bytes(2, "big") + udp_length.to_bytes(2, "big") + bytes(2)
    return MAC_OURS + MAC_THEIRS + b"\x08\x00" + bytes(header) + udp + payload  # UDP checksum 0: none

async def main() -> None:
    subprocess.run(["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
    fd = open_tap("t0", vnet=True)  # offloads come on later, as a gateway's do
    subprocess.run(["ip", "link", "set", "t0", "mtu", "1229", "address", "02:00:00:00:00:01", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{OURS}/24", "dev", "t0"], check=True)
    subprocess.run(["ip", "neigh", "add", THEIRS, "lladdr", "02:00:00:00:00:02", "dev", "t0"], check=True)
    port = TapFramePort(fd, 1229, vnet=True)
    frames, offloaded = asyncio.Queue(), asyncio.Queue()
    port.on_frames(frames.put_nowait)
    port.on_offload(offloaded.put_nowait)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind((OURS, 5000))
    receiver.settimeout(5)
    report = {"offload_port": isinstance(port, OffloadPort)}
    # a finished frame written with an empty vnet header reaches the socket behind the TAP
    report["sent"] = port.send(ipv4_udp(b"finished"))
    report["delivered"] = receiver.recvfrom(100)[0].decode()
    # without offloads the kernel fills in every checksum: a finished frame
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.sendto(b"z" * 100, (THEIRS, 6000))
    report["before_offloads_tail"] = (await asyncio.wait_for(frames.get(), 5))[-3:].decode()
    # with offloads on the kernel's UDP datagram leaves with a partial checksum: offloaded, header and all
    port.enable_offloads()
    sender.sendto(b"x" * 2000, (THEIRS, 6000))  # larger than the MTU: IP fragments, each finished
    sender.sendto(b"y" * 100, (THEIRS, 6000))
    data = await asyncio.wait_for(offloaded.get(), 5)
    codec.check_offloaded(data)
    report["offloaded_flags"] = data[0]
    report["offloaded_payload_tail"] = data[-3:].decode()
    report["fragments_as_frames"] = [len((await asyncio.wait_for(frames.get(), 5))) for _ in range(2)]
    # an offloaded frame written back: the kernel fills in the checksum and delivers it
    header = bytearray(codec.VNET_HEADER_BYTES)
    header[0] = codec.VNET_F_NEEDS_CSUM
    header[6:8], header[8:10] = (14 + 20).to_bytes(2, "little"), (6).to_bytes(2, "little")
    report["offload_sent"] = port.send_offload(bytes(header) + ipv4_udp(b"offloaded"))
    report["offload_delivered"] = receiver.recvfrom(100)[0].decode()
    report["counters"] = port.counters()
    port.close()
    print(json.dumps(report))

asyncio.run(main())
"""


def in_a_namespace(script: str, stdin: str = "") -> dict[str, Any]:
    """Run ``script`` in a fresh user + network namespace, ``stdin`` its input; its report, the JSON it prints."""
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--net", sys.executable, "-c", script],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout))


def test_a_vnet_tap_passes_finished_frames_as_frames_and_offloaded_ones_whole() -> None:
    report = in_a_namespace(SCRIPT)
    assert report["offload_port"] and report["sent"] and report["offload_sent"]
    assert report["delivered"] == "finished" and report["before_offloads_tail"] == "zzz"
    assert report["offloaded_flags"] & 0x01 and report["offloaded_payload_tail"] == "yyy"
    assert all(size <= 1229 + 14 for size in report["fragments_as_frames"]), report
    assert report["offload_delivered"] == "offloaded"
    assert report["counters"]["sent_offloaded"] == 1 and report["counters"]["received_offloaded"] == 1


#: A plain TAP: frames read in bursts reach a batch handler in order, the first after a silence alone; a batch
#: written reaches the socket.
BATCH_SCRIPT = (
    SCRIPT.partition("async def main()")[0]
    + r"""
async def main() -> None:
    subprocess.run(["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
    fd = open_tap("t0")
    subprocess.run(["ip", "link", "set", "t0", "mtu", "1229", "address", "02:00:00:00:00:01", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{OURS}/24", "dev", "t0"], check=True)
    subprocess.run(["ip", "neigh", "add", THEIRS, "lladdr", "02:00:00:00:00:02", "dev", "t0"], check=True)
    port = TapFramePort(fd, 1229)
    batches = []
    port.on_frame_batch(batches.append)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(40):
        sender.sendto(i.to_bytes(2, "big") * 50, (THEIRS, 6000))
    deadline = asyncio.get_running_loop().time() + 10
    while sum(map(len, batches)) < 40 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind((OURS, 5000))
    receiver.settimeout(5)
    frames = [ipv4_udp(b"batch-%d" % i) for i in range(5)] + [bytes(2000)]
    report = {
        "payload_order": [int.from_bytes(f[42:44], "big") for batch in batches for f in batch],
        "batches": len(batches),
        "first_batch": len(batches[0]),
        "written": port.send_batch(frames),
        "delivered": [receiver.recvfrom(100)[0].decode() for _ in range(5)],
        "counters": port.counters(),
    }
    port.close()
    print(json.dumps(report))

asyncio.run(main())
"""
)


def test_a_tap_hands_over_a_burst_of_frames_in_one_call_and_writes_a_batch() -> None:
    report = in_a_namespace(BATCH_SCRIPT)
    assert report["payload_order"] == list(range(40))
    assert report["first_batch"] == 1  # after a silence the first frame goes at once (tap.QUIET_S) ...
    assert report["batches"] < 40  # ... and frames queued together are read together
    assert report["written"] == 5 and report["delivered"] == [f"batch-{i}" for i in range(5)]
    assert report["counters"]["sent_frames"] == 5 and report["counters"]["dropped_size"] == 1
