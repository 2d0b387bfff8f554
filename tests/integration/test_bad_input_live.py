"""A real node fed tens of thousands of random and mutated datagrams stays up, stays small and counts them.

The node runs every network-facing plugin (udp, relay, gossip, omt) on loopback. The test is the
attacker: unauthenticated garbage from a plain socket, and authenticated garbage from a second
identity holding a real Noise session with the node (mutated gossip frames MAC'd with the public
network's key, mutated ledger sync messages, hostile acks, the 4 GiB reliable message, oversized
out-of-order fragments). Afterwards the node answers, still serves a fresh peer, has kept its
resident memory within a stated bound, has raised nothing in any handler, and ``omerta status``
shows what it dropped.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nacl.signing
import pytest
from omerta_discovery_gossip import wire as gossip_wire
from omerta_discovery_gossip.network import public_network
from omerta_ledger_omt.ledger.encoding import canonical
from omerta_transport_udp import wire
from omerta_transport_udp.core import TransportCore
from omerta_transport_udp.testing import UdpNode

from omerta_core.fuzz import mutate
from omerta_core.identity import Identity
from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_core.interfaces.transport import Delivery, PathState

pytestmark = pytest.mark.timeout(900)

LOCAL = ["plugins.udp.port=0", 'plugins.udp.host="127.0.0.1"']
#: Datagrams sent in all, about 40% unauthenticated and 60% sealed on a real session.
DATAGRAMS = 30_000
#: Sent before waiting for the node to have read them: well inside the loopback socket buffer.
BATCH = 200
#: The stated bound: the node's resident memory grows by at most this much over the whole run.
#: Before issue 12, the 1,023 out-of-order 60 KB fragments alone held 58.5 MiB.
MAX_RSS_GROWTH_MIB = 40
#: The ledger's fuzzing find: a CBOR bignum past Python's int-to-text digit limit.
BIGNUM = b"\xc2\x59\x08\x00" + b"\x01" * 2048
#: Follow-on fragments of the 4 GiB message replayed (the fuzzer sent 55,925; these show the same).
REPLAYED_FOLLOW_ONS = 3000
CHANNELS = ["gossip", "ledger.sync", "ledger.omt", "ledger.omt.probe", "relay.punch", "t"]


class Session:
    """A second identity with a real session to the node: a sans-IO core over a real UDP socket."""

    def __init__(self, target: Endpoint, peer: str) -> None:
        self.target = target
        self.peer = PeerId(peer)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.core = TransportCore(nacl.signing.SigningKey.generate())
        self.core.register_channel("t")
        self.sent: list[bytes] = []

    def close(self) -> None:
        self.sock.close()

    def pump(self) -> None:
        now = time.monotonic()
        self.core.tick(now)
        for _route, packet in self.core.outputs:
            self.sent.append(packet)
            self.sock.sendto(packet, self.target)
        self.core.outputs.clear()
        while True:
            try:
                data, (host, port) = self.sock.recvfrom(65536)
            except BlockingIOError:
                return
            self.core.receive(data, Endpoint(host, port), time.monotonic())

    def connect(self, timeout: float = 60.0) -> None:
        self.core.add_peer(self.peer, [self.target], time.monotonic())
        wait_for(lambda: (self.pump(), self.core.path_state(self.peer, time.monotonic()))[1] is PathState.CONNECTED,
                 timeout, "a session with the node")  # fmt: skip

    def seal(self, plaintext: bytes) -> bytes:
        keypair = self.core.peers[self.peer].current
        assert keypair is not None
        return self.core._seal(keypair, plaintext)

    def send_raw(self, datagram: bytes) -> None:
        self.sock.sendto(datagram, self.target)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def udp_counters(node: UdpNode) -> dict[str, int]:
    return dict(node.status()["services"]["transport"]["udp"]["counters"])


@pytest.fixture
def node(tmp_path: Path) -> Iterator[UdpNode]:
    process = UdpNode(tmp_path / "victim", "udp,relay,gossip,omt")
    try:
        yield process.start(*LOCAL)
    finally:
        process.stop()


class Attack:
    """Makes the garbage: every datagram is drawn from one seeded random source, so a failure replays."""

    def __init__(self, session: Session, rng: random.Random) -> None:
        self.session = session
        self.rng = rng
        self.seq = 0  # in order from the start, so whole messages reach the channel handlers
        self.public = public_network()
        me = Identity.generate()
        record_updates = [gossip_wire.encode_update(gossip_wire.Suspect(me.peer_id, 3))]
        self.gossip = [
            gossip_wire.encode(gossip_wire.Ping(1), record_updates),
            gossip_wire.encode(gossip_wire.Ack(1, observed=Endpoint("198.18.0.9", 9))),
            gossip_wire.encode(gossip_wire.Sync([(bytes(8), 1)], [], want_reply=True)),
        ]
        self.ledger = [
            canonical({"t": "heads?", "id": 1}),
            canonical({"t": "range", "id": 2, "owner": str(me.peer_id), "blocks": [BIGNUM]}),
            json.dumps({"type": "X", "session": "ab", "sender": "a", "recipient": "b", "payload": {}}).encode(),
        ]  # fmt: skip
        self.handshakes = list(session.sent)
        self.identify = wire.encode_identify_request(bytes(8))

    # -- unauthenticated ------------------------------------------------------------------

    def unauthenticated(self) -> bytes:
        rng = self.rng
        choice = rng.randrange(5)
        if choice == 0:
            return rng.randbytes(rng.randint(0, 1400))
        if choice == 1:  # a transport type byte and garbage after it
            return bytes([rng.randint(0x10, 0x1F)]) + rng.randbytes(rng.randint(0, 300))
        if choice == 2:  # relay and STUN shaped
            head = bytes([rng.randint(0xA0, 0xAF)]) if rng.random() < 0.5 else b"\x00\x01\x00\x00\x21\x12\xa4\x42"
            return head + rng.randbytes(rng.randint(0, 200))
        if choice == 3:
            return mutate(rng.choice(self.handshakes), rng)
        return mutate(self.identify, rng)

    # -- authenticated --------------------------------------------------------------------

    def authenticated(self) -> bytes:
        rng = self.rng
        choice = rng.randrange(6)
        if choice == 0:  # a datagram frame on a real channel: a mutated gossip message with a valid MAC, or not
            body = mutate(rng.choice(self.gossip), rng)
            body = self.public.seal(body) if rng.random() < 0.7 else mutate(self.public.seal(body), rng)
            plaintext = wire.encode_datagram_frame(wire.channel_tag(rng.choice(CHANNELS)), body)
        elif choice == 1:  # a whole reliable message on a real channel: valid frame, mutated content
            channel = rng.choice(CHANNELS).encode()
            data = mutate(rng.choice(self.ledger + [self.public.seal(g) for g in self.gossip]), rng)[:1000]
            plaintext = self._reliable(data, channel)
        elif choice == 2:  # hostile acknowledgements
            base = rng.randrange(2**40)
            starts = sorted({base + 65536 * rng.randrange(2**14) for _ in range(wire.MAX_ACK_RANGES)})
            plaintext = wire.encode_ack_frame(base, [(start, rng.randint(1, 65535)) for start in starts])
        elif choice == 3:  # random frames
            plaintext = rng.randbytes(rng.randint(0, 1200))
        elif choice == 4:  # a mutated reliable frame that repeats a number already used (never opens a gap)
            channel = rng.choice(CHANNELS).encode()
            data = rng.randbytes(rng.randint(0, 200))
            frame = wire.encode_reliable_frame(max(0, self.seq - 1), wire.FLAG_FIRST | wire.FLAG_LAST, data, len(data))
            plaintext = mutate(frame + channel, rng)
        else:  # an oversized out-of-order fragment (60 KB), far above the MTU
            plaintext = wire.encode_reliable_frame(self.seq + rng.randint(2, 1000), 0, b"\xcc" * 60_000)
        return self.session.seal(plaintext)

    def replays(self) -> Iterator[bytes]:
        """The fuzzer's finds, sealed on the session: the 4 GiB message and its follow-on fragments,
        then 1,023 out-of-order 60 KB fragments (58.5 MiB held before the fix)."""
        yield self.session.seal(wire.encode_reliable_frame(self.seq, wire.FLAG_FIRST, b"\xaa" * 1000, 2**32 - 1, b"t"))
        for i in range(1, REPLAYED_FOLLOW_ONS + 1):
            last = wire.FLAG_LAST if i == REPLAYED_FOLLOW_ONS else 0
            yield self.session.seal(wire.encode_reliable_frame(self.seq + i, last, b"\xbb" * 1200))
        self.seq += REPLAYED_FOLLOW_ONS + 1
        for i in range(2, 1025):
            yield self.session.seal(wire.encode_reliable_frame(self.seq + i, 0, b"\xcc" * 60_000))

    def _reliable(self, data: bytes, channel: bytes) -> bytes:
        frame = wire.encode_reliable_frame(self.seq, wire.FLAG_FIRST | wire.FLAG_LAST, data, len(data), channel)
        self.seq += 1
        return frame


def test_node_survives_tens_of_thousands_of_bad_datagrams(node: UdpNode, tmp_path: Path) -> None:
    assert node.process is not None
    pid = node.process.pid
    target = Endpoint("127.0.0.1", node.port)
    session = Session(target, node.peer_id)
    friend = Session(target, node.peer_id)
    try:
        session.connect()
        before = udp_counters(node)
        baseline_rss = rss_bytes(pid)
        attack = Attack(session, random.Random(12))
        replays = attack.replays()
        sent = 0
        while sent < DATAGRAMS:
            for _ in range(BATCH):
                datagram = next(replays, None)
                if datagram is None:
                    datagram = attack.authenticated() if attack.rng.random() < 0.6 else attack.unauthenticated()
                session.send_raw(datagram)
                sent += 1
            session.pump()  # answer the node (acks, keepalives) so the session stays up
            floor = before["received_packets"] + sent - BATCH  # allow loopback to lose a batch's worth
            wait_for(lambda floor=floor: udp_counters(node)["received_packets"] >= floor, 60, "the node to read")
        peak_rss = rss_bytes(pid)
        after = udp_counters(node)
        status = node.status()

        # it stayed up and kept its memory
        assert node.running
        growth = peak_rss - baseline_rss
        print(f"bad input: {sent} datagrams; RSS {baseline_rss >> 20} -> {peak_rss >> 20} MiB; counters {after}")
        assert growth <= MAX_RSS_GROWTH_MIB << 20, f"RSS grew by {growth >> 20} MiB"

        # it counted what it dropped, and no handler raised
        received = after["received_packets"] - before["received_packets"]
        assert received >= 0.95 * sent
        assert after.get("handler_errors", 0) == 0
        for reason in ("oversize", "unknown_session", "malformed", "malformed_frame", "reliable_refused"):
            assert after.get(f"dropped_{reason}", 0) > before.get(f"dropped_{reason}", 0), reason
        assert after["dropped"] - before.get("dropped", 0) >= 0.3 * sent
        gossip = next(iter(status["services"]["discovery"]["gossip"]["networks"].values()))["counters"]
        assert gossip.get("malformed", 0) + gossip.get("bad_mac", 0) > 0
        assert "Traceback" not in node.log_tail(10**7)

        # `omerta status` shows it
        cli = subprocess.run(
            [sys.executable, "-m", "omerta_core", "status", "--state-dir", str(node.state_dir), "--json"],
            capture_output=True, text=True, check=True, timeout=120,
        )  # fmt: skip
        shown = json.loads(cli.stdout)["services"]["transport"]["udp"]["counters"]
        assert shown["dropped"] >= after["dropped"]

        # and it still serves: a fresh peer's message arrives
        node.call("udp.subscribe", {"channel": "t"})
        friend.connect()
        friend.core.send(PeerId(node.peer_id), "t", b"still here", Delivery.RELIABLE, time.monotonic())
        got: list[bytes] = []
        wait_for(lambda: (friend.pump(), got.extend(node.received("t")), b"still here" in got)[2], 60, "delivery")
    finally:
        session.close()
        friend.close()
