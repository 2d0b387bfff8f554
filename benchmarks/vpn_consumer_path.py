"""The consumer's Python per tunnelled frame, in one process: the vpn plugin's path from a batch of datagrams to the
TAP's writes, without the transport.

What ``vpn_frames_vs_datagrams_ratio`` (``benchmarks/vpn.py``) turns on at saturation is the consumer's Python
per frame against the transport's per datagram; this measures the tunnel's part of it alone, where the host's
swings and the other end do not move it: batches of 140 datagrams (about what the udp transport hands over per
call at saturation) of 1000-byte UDP frames whose IPv4 identifications count up in runs of 40 (the benchmark's
frame source sends bursts of 64 that drops break up), through ``ConsumerLink.receive_batch`` and
``TapFramePort.send_batch`` (receive coalescing, ``omerta_vpn.gro``) to ``writev`` on ``/dev/null`` (the pure
Python part: a TAP's write adds the gateway kernel's work, the same whatever the Python). CPU time
(``time.process_time``) over many short samples; the figure is their median (the lowest printed beside it).
To compare two versions of the code, run this alternately in each tree a few times.
"""

from __future__ import annotations

import os
import random
import socket
import statistics
import struct
import time

from omerta_vpn import codec
from omerta_vpn.tap import TapFramePort
from omerta_vpn.tunnel import ConsumerLink, FrameRun, FramesMode

VM_ID = "0123456789abcdef0123456789abcdef"
BATCH = 140
RUN = 40
PAYLOAD = 958  # 1000-byte frames, as the benchmark's frame source sends
SAMPLES = 60
BATCHES_PER_SAMPLE = 40


def checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(payload: bytes, ident: int) -> bytes:
    """An Ethernet frame with an IPv4 UDP datagram (don't fragment set), every checksum right."""
    source, destination = socket.inet_aton("198.18.254.2"), socket.inet_aton("198.18.255.1")
    length = 8 + len(payload)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, ident, 0x4000, 63, 17, 0, source, destination))
    ip[10:12] = checksum(bytes(ip)).to_bytes(2, "big")
    udp = bytearray(struct.pack("!HHHH", 40000, 9, length, 0))
    pseudo = source + destination + struct.pack("!BBH", 0, 17, length)
    udp[6:8] = (checksum(pseudo + bytes(udp) + payload) or 0xFFFF).to_bytes(2, "big")
    return bytes.fromhex("020000000001020000000002") + b"\x08\x00" + bytes(ip) + bytes(udp) + payload


def batch() -> list[bytes]:
    rng = random.Random(1)
    tunnel = codec.tunnel_id(VM_ID)
    datagrams, ident = [], rng.randrange(65536)
    for index in range(BATCH):
        if index % RUN == 0:
            ident = (ident + rng.randrange(5, 30)) & 0xFFFF  # the frames a drop took
        datagrams.append(codec.encode_frame(tunnel, udp_frame(rng.randbytes(PAYLOAD), ident)))
        ident = (ident + 1) & 0xFFFF
    return datagrams


def main() -> None:
    datagrams = batch()
    link = ConsumerLink(VM_ID, max_datagram=1400, mode=FramesMode.FIT)
    fd = os.open(os.devnull, os.O_WRONLY)
    port = TapFramePort(fd, 1386, vnet=True)

    def consume() -> None:
        for run in link.receive_batch(datagrams, time.monotonic()).runs:
            if type(run) is FrameRun:
                port.send_batch(run.frames, run.offset)

    for _ in range(50):
        consume()
    samples = []
    for _ in range(SAMPLES):
        start = time.process_time()
        for _ in range(BATCHES_PER_SAMPLE):
            consume()
        samples.append((time.process_time() - start) / BATCHES_PER_SAMPLE / BATCH * 1e6)
    counters = port.counters()
    port.close()
    print(
        f"  {SAMPLES} samples of {BATCHES_PER_SAMPLE} batches of {BATCH} frames: lowest {min(samples):.3f} µs per"
        f" frame; joined writes {counters.get('sent_joined_writes', 0):,} carrying"
        f" {counters.get('sent_joined_frames', 0):,} of {counters.get('sent_frames', 0):,} frames"
    )
    print(f"vpn_consumer_tunnel_us_per_frame: {statistics.median(samples):.3f}")


if __name__ == "__main__":
    main()
