"""Coalescing frames into UDP super-frames: exactly what was sent comes out, odd frames pass alone.

The unit tests segment :func:`omerta_vpn.gro.plan`'s super-frames as Linux does (``__udp_gso_segment``:
the first frame's headers, lengths and checksums per segment, the IPv4 identification counting up);
the namespace test has a real kernel do it: a gateway-like namespace forwards what a TAP with vnet
headers is given out of a second, plain TAP, and every frame read there is compared with the one sent.
"""

from __future__ import annotations

import json
import random
import socket
import struct
from collections.abc import Sequence

import pytest
from omerta_vpn import gro
from test_tap import in_a_namespace

MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
SOURCE, DESTINATION = "198.18.1.2", "198.18.2.2"


def checksum(data: bytes, extra: int = 0) -> int:
    if len(data) % 2:
        data += b"\0"
    total = extra + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp4(
    payload: bytes,
    *,
    ident: int = 1,
    sport: int = 4000,
    dport: int = 5000,
    flags: int = 0x4000,
    options: bytes = b"",
    udp_checksum: bool = True,
    source: str = SOURCE,
) -> bytes:
    """An Ethernet frame with an IPv4 UDP datagram, every checksum right."""
    ihl = 5 + len(options) // 4
    src, dst = socket.inet_aton(source), socket.inet_aton(DESTINATION)
    udp_length = 8 + len(payload)
    ip = bytearray(
        struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + udp_length, ident & 0xFFFF, flags, 64, 17, 0, src, dst)
    )
    ip += options
    ip[10:12] = checksum(bytes(ip)).to_bytes(2, "big")
    udp = bytearray(struct.pack("!HHHH", sport, dport, udp_length, 0))
    if udp_checksum:
        pseudo = src + dst + struct.pack("!BBH", 0, 17, udp_length)
        udp[6:8] = (checksum(pseudo + bytes(udp) + payload) or 0xFFFF).to_bytes(2, "big")
    return MAC_A + MAC_B + b"\x08\x00" + bytes(ip) + bytes(udp) + payload


def udp6(payload: bytes, *, sport: int = 4000) -> bytes:
    src, dst = socket.inet_pton(socket.AF_INET6, "fd00::2"), socket.inet_pton(socket.AF_INET6, "fd00:1::2")
    udp_length = 8 + len(payload)
    ip = struct.pack("!IHBB16s16s", 6 << 28, udp_length, 17, 64, src, dst)
    udp = bytearray(struct.pack("!HHHH", sport, 5000, udp_length, 0))
    pseudo = src + dst + struct.pack("!IxxxB", udp_length, 17)
    udp[6:8] = (checksum(pseudo + bytes(udp) + payload) or 0xFFFF).to_bytes(2, "big")
    return MAC_A + MAC_B + b"\x86\xdd" + ip + bytes(udp) + payload


def segment(buffers: Sequence[bytes | memoryview]) -> list[bytes]:
    """What Linux makes of one write to a TAP: the frame, or the segments of a UDP super-frame."""
    header, data = bytes(buffers[0]), b"".join(bytes(b) for b in buffers[1:])
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = struct.unpack("<BBHHHH", header)
    if gso_type == 0:
        assert header == bytes(10)
        return [data]
    assert (flags, gso_type, csum_offset) == (1, gro.GSO_UDP_L4, 6)
    head, payload = data[:hdr_len], data[hdr_len:]
    v4 = head[12:14] == b"\x08\x00"
    udp_at = csum_start
    assert udp_at == hdr_len - 8
    frames = []
    for index in range(0, len(payload), gso_size):
        chunk = payload[index : index + gso_size]
        frame = bytearray(head + chunk)
        udp_length = 8 + len(chunk)
        if v4:
            frame[16:18] = (20 + udp_length).to_bytes(2, "big")
            ident = (int.from_bytes(head[18:20], "big") + index // gso_size) & 0xFFFF
            frame[18:20] = ident.to_bytes(2, "big")
            frame[24:26] = bytes(2)
            frame[24:26] = checksum(bytes(frame[14:34])).to_bytes(2, "big")
            pseudo = bytes(frame[26:34]) + struct.pack("!BBH", 0, 17, udp_length)
        else:
            frame[18:20] = udp_length.to_bytes(2, "big")
            pseudo = bytes(frame[22:54]) + struct.pack("!IxxxB", udp_length, 17)
        frame[udp_at + 4 : udp_at + 6] = udp_length.to_bytes(2, "big")
        frame[udp_at + 6 : udp_at + 8] = bytes(2)
        frame[udp_at + 6 : udp_at + 8] = (checksum(pseudo + bytes(frame[udp_at:])) or 0xFFFF).to_bytes(2, "big")
        frames.append(bytes(frame))
    return frames


def replay(frames: list[bytes]) -> tuple[list[bytes], list[int]]:
    """The frames a kernel makes of :func:`gro.plan`'s writes, and how many each write carried."""
    writes = gro.plan(frames, min_group=2)
    out = [frame for buffers, _ in writes for frame in segment(buffers)]
    assert [frame for _, carried in writes for frame in carried] == frames
    return out, [len(carried) for _, carried in writes]


def test_a_run_of_one_flow_becomes_one_write_the_kernel_segments_back_exactly() -> None:
    frames = [udp4(bytes([i]) * 958, ident=65530 + i) for i in range(20)]  # the identification wraps
    out, counts = replay(frames)
    assert out == frames and counts == [20]


def test_ipv6_runs_join_too() -> None:
    frames = [udp6(bytes([i]) * 500) for i in range(5)]
    out, counts = replay(frames)
    assert out == frames and counts == [5]


def test_a_run_stops_at_the_segment_limit_and_at_the_ip_length_limit() -> None:
    small = [udp4(bytes([i % 256]) * 100, ident=i) for i in range(150)]
    out, counts = replay(small)
    assert out == small and counts == [64, 64, 22]
    big = [udp4(bytes([i]) * 1472, ident=i) for i in range(64)]  # 44 of them fill an IPv4 packet
    out, counts = replay(big)
    assert out == big and counts == [44, 20]


def good(i: int) -> bytes:
    return udp4(bytes([i]) * 300, ident=i)


def broken(frame: bytes, at: int) -> bytes:
    changed = bytearray(frame)
    changed[at] ^= 0x01
    return bytes(changed)


ODD_FRAMES = {
    "ip options": udp4(bytes(296), ident=2, options=b"\x01\x01\x01\x00"),
    "first fragment": udp4(bytes(300), ident=2, flags=0x2000),
    "later fragment": udp4(bytes(300), ident=2, flags=0x0010),
    "no udp checksum": udp4(bytes(300), ident=2, udp_checksum=False),
    "bad udp checksum": broken(good(2), -1),
    "bad ip checksum": broken(good(2), 25),
    "another port": udp4(bytes(300), ident=2, sport=4001),
    "another source": udp4(bytes(300), ident=2, source="198.18.1.3"),
    "identification not counting up": udp4(bytes(300), ident=9),
}


@pytest.mark.parametrize("name", ODD_FRAMES)
def test_an_odd_frame_passes_alone_between_runs(name: str) -> None:
    frames = [good(0), good(1), ODD_FRAMES[name], good(3), good(4)]
    out, counts = replay(frames)
    assert out == frames and counts == [2, 1, 2]


def test_runs_break_at_a_frame_of_another_size() -> None:
    frames = [good(0), good(1), udp4(b"short", ident=2), good(3), good(4)]
    out, counts = replay(frames)
    assert out == frames and counts == [2, 1, 2]


def test_tcp_arp_and_lone_frames_are_written_as_they_came() -> None:
    tcp = bytearray(udp4(bytes(300), ident=1))
    tcp[23] = 6
    arp = MAC_A + MAC_B + b"\x08\x06" + bytes(28)
    frames = [bytes(tcp), bytes(tcp), arp, arp, udp4(b"x" * 40)]
    out, counts = replay(frames)
    assert out == frames and counts == [1] * 5


#: Runs in a fresh user + network namespace that forwards from a vnet TAP (frames written with
#: ``send_batch``) out of a plain TAP (read here): the kernel segments every super-frame on the way out.
SCRIPT = r"""
import json, os, subprocess, sys, time
from omerta_vpn.tap import TapFramePort
from omerta_vpn.tun import open_tap

frames = [bytes.fromhex(f) for f in json.loads(sys.stdin.read())]
subprocess.run(["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
                "net.ipv4.ip_forward=1"], check=True)
into, out = open_tap("gin", vnet=True), open_tap("gout")
for name, address, neighbour, mac in (("gin", "198.18.1.1/24", "198.18.1.2", "02:00:00:00:00:02"),
                                      ("gout", "198.18.2.1/24", "198.18.2.2", "02:00:00:00:00:09")):
    subprocess.run(["ip", "link", "set", name, "mtu", "1500", "up"], check=True)
    subprocess.run(["ip", "addr", "add", address, "dev", name], check=True)
    subprocess.run(["ip", "neigh", "add", neighbour, "lladdr", mac, "dev", name], check=True)
subprocess.run(["ip", "link", "set", "gin", "address", "02:00:00:00:00:01"], check=True)
port = TapFramePort(into, 1500, vnet=True)
written = port.send_batch(frames)
os.set_blocking(out, False)
seen, deadline = [], time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        frame = os.read(out, 70000)
    except BlockingIOError:
        time.sleep(0.01)
        continue
    if frame[12:14] == b"\x08\x00":
        seen.append(frame.hex())
    deadline = min(deadline, time.monotonic() + 1)  # a second of quiet after the last frame
print(json.dumps({"written": written, "seen": seen, "counters": port.counters()}))
port.close()
"""


def forwarded(frame: bytes) -> bytes:
    """``frame`` as the namespace forwards it: new MACs, TTL one less, the IP header checksum to match."""
    ip = bytearray(frame[14:])
    ip[8] -= 1
    ihl = (ip[0] & 0x0F) * 4
    ip[10:12] = bytes(2)
    ip[10:12] = checksum(bytes(ip[:ihl])).to_bytes(2, "big")
    return bytes.fromhex("020000000009") + bytes(6) + b"\x08\x00" + bytes(ip)


def test_a_real_kernel_gives_back_the_frames_sent_in_order_and_odd_ones_untouched() -> None:
    first = [udp4(bytes([i]) * 958, ident=100 + i) for i in range(50)]
    # each odd frame would continue the run before it: only a check keeps it out
    bad_ip = broken(udp4(b"c" * 958, ident=150), 25)  # dropped by the kernel
    bad_udp = broken(udp4(b"b" * 958, ident=152), -1)  # forwarded as it is, its wrong checksum kept
    frames = [
        *first,
        bad_ip,
        udp4(b"a" * 958, ident=151),
        bad_udp,
        udp4(bytes(954), ident=153, options=b"\x01\x01\x01\x00"),
        udp4(bytes(958), ident=154, flags=0x2000),  # a first fragment, forwarded as it is
        udp4(bytes(958), ident=155, udp_checksum=False),
        *[udp4(bytes([i]) * 958, ident=156 + i, sport=4000 + i % 2) for i in range(6)],  # two flows, interleaved
        *[udp4(bytes([i]) * 958, ident=162 + i) for i in range(30)],
        udp4(b"tail", ident=192),
    ]
    report = in_a_namespace(SCRIPT, json.dumps([f.hex() for f in frames]))
    expected = [forwarded(f) for f in frames if f != bad_ip]
    seen = [bytes.fromhex(f) for f in report["seen"]]
    # the sender MAC of forwarded frames is the out-TAP's (random): compare the rest
    assert [f[:6] + f[12:] for f in seen] == [f[:6] + f[12:] for f in expected]
    assert report["written"] == len(frames) and report["counters"]["sent_frames"] == len(frames)
    assert report["counters"]["sent_joined_writes"] == 2  # the two long runs
    assert report["counters"]["sent_joined_frames"] == 50 + 30


def test_short_runs_are_written_frame_by_frame_where_the_checks_would_cost_more_than_they_save() -> None:
    frames = [good(i) for i in range(gro.MIN_GROUP - 1)]
    assert [len(carried) for _, carried in gro.plan(frames)] == [1] * len(frames)
    frames.append(good(len(frames)))
    assert [len(carried) for _, carried in gro.plan(frames)] == [len(frames)]


#: A kernel that refuses UDP super-frames (as before Linux 4.18), played by a ``writev`` that fails with
#: EINVAL for anything but a header and one frame: the run goes frame by frame, and so does all after it.
REFUSING_SCRIPT = r"""
import errno, json, os, socket, subprocess, sys
from omerta_vpn.tap import TapFramePort
from omerta_vpn.tun import open_tap

frames = [bytes.fromhex(f) for f in json.loads(sys.stdin.read())]
subprocess.run(["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
fd = open_tap("gin", vnet=True)
subprocess.run(["ip", "link", "set", "gin", "mtu", "1500", "address", "02:00:00:00:00:01", "up"], check=True)
subprocess.run(["ip", "addr", "add", "198.18.2.2/24", "dev", "gin"], check=True)
receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
receiver.bind(("198.18.2.2", 5000))
receiver.settimeout(5)
writev = os.writev
def refusing(fd, buffers):
    if len(buffers) > 2:
        raise OSError(errno.EINVAL, "no UDP super-frames here")
    return writev(fd, buffers)
os.writev = refusing
port = TapFramePort(fd, 1500, vnet=True)
written = [port.send_batch(frames[:60]), port.send_batch(frames[60:])]
payloads = [receiver.recv(2000)[:1].hex() for _ in frames]
print(json.dumps({"written": written, "payloads": payloads, "counters": port.counters()}))
port.close()
"""


def test_a_kernel_that_refuses_super_frames_gets_every_frame_one_by_one() -> None:
    frames = [udp4(bytes([i]) * 958, ident=i) for i in range(120)]
    report = in_a_namespace(REFUSING_SCRIPT, json.dumps([f.hex() for f in frames]))
    assert report["written"] == [60, 60]
    assert report["payloads"] == [bytes([i]).hex() for i in range(120)]
    assert report["counters"]["sent_frames"] == 120 and "sent_joined_writes" not in report["counters"]


def _random_batch(rng: random.Random) -> list[bytes]:
    """Frames as a tunnel brings them: runs of one flow with identifications counting up, broken by drops,
    and now and then a frame the kernel would not give back as it came if joined."""
    size = rng.choice([100, 301, 958, 1472])
    ident, frames = rng.randrange(65536), []
    for _ in range(rng.randrange(1, 200)):
        if rng.random() < 0.05:
            ident = rng.randrange(65536)
        odd = rng.random()
        if odd < 0.02:
            frame = broken(udp4(rng.randbytes(size), ident=ident), rng.randrange(14, 42 + size))
        elif odd < 0.04:
            frame = udp4(rng.randbytes(size), ident=ident, udp_checksum=False)
        elif odd < 0.06:
            frame = udp4(rng.randbytes(size), ident=ident, sport=4001)
        elif odd < 0.07:
            frame = udp4(rng.randbytes(size - 1), ident=ident)
        else:
            frame = udp4(rng.randbytes(size), ident=ident)
        frames.append(frame)
        ident = (ident + 1) & 0xFFFF
    return frames


def test_random_batches_come_back_exactly_and_alike_behind_a_header() -> None:
    rng = random.Random(14)
    for _ in range(150):
        frames = _random_batch(rng) if rng.random() < 0.8 else [udp6(rng.randbytes(500)) for _ in range(30)]
        out, counts = replay(frames)
        assert out == frames and sum(counts) == len(frames)
        for offset in (1, 5):  # frames still in their datagrams: the same writes
            datagrams = [rng.randbytes(offset) + frame for frame in frames]
            writes = gro.plan(datagrams, min_group=2, offset=offset)
            assert [[bytes(b) for b in buffers] for buffers, _ in writes] == [
                [bytes(b) for b in buffers] for buffers, _ in gro.plan(frames, min_group=2)
            ]
            assert [d for _, carried in writes for d in carried] == datagrams


def test_a_batch_larger_than_the_tiled_masks_joins_as_well() -> None:
    frames = [udp4(bytes([i % 256]) * 100, ident=i) for i in range(gro._TILED_ROWS + 100)]
    out, counts = replay(frames)
    assert out == frames and counts == [64] * (len(frames) // 64) + [len(frames) % 64]


def test_a_run_of_another_ethernet_type_after_ipv4_frames_is_written_as_it_came() -> None:
    frames = [udp4(bytes([i]) * 300, ident=i) for i in range(4)]
    other = [f[:12] + b"\x88\xb5" + f[14:] for f in (udp4(bytes([i]) * 300, ident=10 + i) for i in range(4))]
    out, counts = replay(frames + other)
    assert out == frames + other and counts == [4, 1, 1, 1, 1]
