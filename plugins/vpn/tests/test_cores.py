"""The sans-IO parts: the tunnel datagram codec, the provider's enforcement and timers, the consumer's link."""

from __future__ import annotations

import contextlib
import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from omerta_vpn import codec, ruleset
from omerta_vpn.errors import ControlMessageError
from omerta_vpn.service import _parse_rogue
from omerta_vpn.tunnel import (
    ConsumerLink,
    DeleteVm,
    FrameRun,
    FramesMode,
    PauseVm,
    ProviderTunnel,
    ResumeVm,
    Rogue,
    RoguePolicy,
    Timing,
)

from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_core.interfaces.vpn import TunnelState
from omerta_core.testing.virtual import Simulation

VM_ID = "0123456789abcdef0123456789abcdef"
VM_MAC = "52:54:00:01:23:45"
MAX_DATAGRAM = 1248
PEER = PeerId.from_public_key(bytes(32))
TIMING = Timing(keepalive_s=1, consumer_timeout_s=3, lease_grace_s=10, delete_after_s=20)


def frame(size: int, source: str = VM_MAC) -> bytes:
    return b"\xff" * 6 + bytes.fromhex(source.replace(":", "")) + b"\x08\x00" + bytes(size - 14)


def provider(timing: Timing = TIMING, **kw: object) -> ProviderTunnel:
    tunnel = ProviderTunnel(VM_ID, VM_MAC, max_datagram=MAX_DATAGRAM, now=0.0, timing=timing, **kw)  # type: ignore[arg-type]
    tunnel.vm_ready(0.0)
    return tunnel


def test_the_fit_mtu_makes_a_full_frame_exactly_one_datagram() -> None:
    mtu = codec.fit_mtu(MAX_DATAGRAM)
    assert mtu == 1229
    assert len(codec.encode_frame(1, frame(mtu + 14))) == MAX_DATAGRAM


@given(st.binary(max_size=2000))
def test_the_decoder_raises_only_its_own_error(data: bytes) -> None:
    with contextlib.suppress(codec.CodecError):
        codec.decode(data)


@given(st.integers(min_value=MAX_DATAGRAM - codec.HEADER_BYTES + 1, max_value=codec.MAX_FRAME))
def test_fragments_join_into_the_frame_in_any_order(size: int) -> None:
    whole = bytes(range(256)) * 6
    original = whole[:size]
    pieces = codec.encode_fragments(7, 42, original, MAX_DATAGRAM)
    assert pieces and all(len(p) <= MAX_DATAGRAM for p in pieces)
    joiner = codec.Reassembler()
    results = [joiner.add(codec.decode(p)) for p in reversed(pieces)]  # type: ignore[arg-type]
    assert results[-1] == original and all(r is None for r in results[:-1])


def test_the_reassembler_is_bounded() -> None:
    joiner = codec.Reassembler()
    for frame_id in range(codec.MAX_PARTIAL_FRAMES * 3):
        first = codec.encode_fragments(1, frame_id, bytes(1500), MAX_DATAGRAM)[0]
        joiner.add(codec.decode(first))  # type: ignore[arg-type]
    assert len(joiner._partial) == codec.MAX_PARTIAL_FRAMES
    assert joiner.dropped == codec.MAX_PARTIAL_FRAMES * 2


def test_frames_go_to_the_consumer_only_while_it_is_heard() -> None:
    tunnel = provider()
    assert tunnel.from_vm(frame(100), 0.5) == []
    assert tunnel.counters["dropped_no_session"] == 1 and tunnel.state(0.5) is TunnelState.WAITING
    tunnel.from_consumer(codec.Keepalive(tunnel.tunnel), 1.0)
    assert tunnel.from_vm(frame(100), 1.5) == [codec.encode_frame(tunnel.tunnel, frame(100))]
    assert tunnel.state(1.5) is TunnelState.UP
    assert tunnel.from_vm(frame(100), 4.5) == []  # 3.5 s of silence: no live session
    assert tunnel.counters["dropped_no_session"] == 2


def test_a_frame_too_big_to_fit_is_dropped_and_counted_or_fragmented() -> None:
    fit = provider()
    fit.from_consumer(codec.Keepalive(fit.tunnel), 0.0)
    assert fit.from_vm(frame(1514), 0.1) == []
    assert fit.counters["dropped_too_big"] == 1
    split = provider(mode=FramesMode.FRAGMENT)
    split.from_consumer(codec.Keepalive(split.tunnel), 0.0)
    assert len(split.from_vm(frame(1514), 0.1)) == 2
    assert split.counters["fragmented_frames"] == 1


def test_a_foreign_source_mac_is_rogue_and_kills_by_default() -> None:
    tunnel = provider()
    tunnel.from_consumer(codec.Keepalive(tunnel.tunnel), 0.0)
    assert tunnel.from_vm(frame(100, "02:00:00:00:be:ef"), 0.1) == []
    assert tunnel.actions == [DeleteVm("rogue"), Rogue("foreign-source-mac", 1, "kill")]
    assert tunnel.state(0.1) is TunnelState.CLOSED


def test_the_pause_policy_acts_after_the_threshold_and_reports_are_bounded() -> None:
    tunnel = provider(policy=RoguePolicy.PAUSE, rogue_threshold=3)
    for _ in range(100):
        tunnel.from_vm(frame(60, "02:00:00:00:be:ef"), 0.1)
    reports = [a for a in tunnel.actions if isinstance(a, Rogue)]
    assert [r.count for r in reports] == [1, 2, 3, 4, 8, 16, 32, 64]
    assert [a for a in tunnel.actions if isinstance(a, PauseVm)] == [PauseVm("rogue")]
    tunnel.actions.clear()
    tunnel.from_consumer(codec.Keepalive(tunnel.tunnel), 0.2)
    assert tunnel.actions == []  # a rogue pause is not lifted by the consumer's return


def test_a_consumer_gone_past_the_grace_pauses_then_deletes_and_a_return_resumes() -> None:
    tunnel = provider()
    tunnel.from_consumer(codec.Keepalive(tunnel.tunnel), 1.0)
    assert tunnel.next_deadline() == 11.0
    tunnel.tick(10.9)
    assert tunnel.actions == []
    tunnel.tick(11.0)
    assert tunnel.actions == [PauseVm("consumer-gone")] and tunnel.state(11.0) is TunnelState.PAUSED
    tunnel.from_consumer(codec.Keepalive(tunnel.tunnel), 12.0)
    assert tunnel.actions[-1] == ResumeVm()
    tunnel.actions.clear()
    tunnel.tick(22.0)
    tunnel.tick(42.0)
    assert tunnel.actions == [PauseVm("consumer-gone"), DeleteVm("consumer-gone")]
    assert tunnel.next_deadline() == math.inf


def test_the_grace_only_runs_once_the_vm_is_ready() -> None:
    tunnel = ProviderTunnel(VM_ID, VM_MAC, max_datagram=MAX_DATAGRAM, now=0.0, timing=TIMING)
    tunnel.tick(1000.0)
    assert tunnel.actions == [] and tunnel.next_deadline() == math.inf
    tunnel.vm_ready(1000.0)
    tunnel.tick(1010.0)
    assert tunnel.actions == [PauseVm("consumer-gone")]


def test_the_consumer_link_keeps_alive_and_fits_frames() -> None:
    link = ConsumerLink(VM_ID, max_datagram=MAX_DATAGRAM, timing=TIMING)
    assert link.keepalive_due(0.0) == codec.encode_keepalive(link.tunnel)
    assert link.keepalive_due(0.5) is None
    assert link.from_gateway(frame(100), 0.6) and link.keepalive_due(1.5) is None
    assert link.keepalive_due(1.6) is not None
    assert link.from_gateway(frame(1514), 2.0) == [] and link.counters["dropped_too_big"] == 1
    assert link.from_provider(codec.Frame(link.tunnel, frame(60)), 2.0) == frame(60)


#: How often the vpn service runs the cores' timers (omerta_vpn.service.TICK_S).
SERVICE_TICK_S = 0.25
PROVIDER_AT, CONSUMER_AT = Endpoint("198.18.1.2", 7000), Endpoint("198.18.2.2", 7000)


class ForgetfulNat:
    """An address-and-port-dependent NAT in front of one end: it lets a datagram in only after its
    own side sent one out since it last forgot its mappings."""

    def __init__(self) -> None:
        self.open = True
        self.dropped = 0

    def forget(self) -> None:
        self.open = False


class TunnelEnds:
    """A provider tunnel and its consumer's link, driven as the vpn service drives them, on a virtual network.

    The guest is idle: only keepalives travel.
    """

    def __init__(self, sim: Simulation, timing: Timing = TIMING) -> None:
        self.sim = sim
        self.provider = provider(timing)
        self.consumer = ConsumerLink(VM_ID, max_datagram=MAX_DATAGRAM, timing=timing)
        self.nats = {PROVIDER_AT: ForgetfulNat(), CONSUMER_AT: ForgetfulNat()}
        self.reconnects = {PROVIDER_AT: 0, CONSUMER_AT: 0}
        #: No datagram gets through either way (an address changed behind a filtering NAT).
        self.cut = False
        self.actions: list[object] = []
        self._next = 0.0
        sim.network.attach(PROVIDER_AT, self._arrived(PROVIDER_AT))
        sim.network.attach(CONSUMER_AT, self._arrived(CONSUMER_AT))

    def _arrived(self, at: Endpoint):  # type: ignore[no-untyped-def]
        def receive(data: bytes, _source: Endpoint) -> None:
            nat = self.nats[at]
            if not nat.open:
                nat.dropped += 1
                return
            if at == PROVIDER_AT:
                self.provider.from_consumer(codec.decode(data), self.sim.clock.now)
            else:
                self.consumer.from_provider(codec.decode(data), self.sim.clock.now)

        return receive

    def _send(self, source: Endpoint, destination: Endpoint, data: bytes) -> None:
        self.nats[source].open = True  # an outbound packet makes the mapping anew
        if not self.cut:
            self.sim.network.send(source, destination, data)

    def next_deadline(self) -> float:
        return self._next

    def on_timer(self, now: float) -> None:
        self._next = now + SERVICE_TICK_S
        self.provider.tick(now)
        self.actions += self.provider.actions
        self.provider.actions.clear()
        for end, here, there in (
            (self.provider, PROVIDER_AT, CONSUMER_AT),
            (self.consumer, CONSUMER_AT, PROVIDER_AT),
        ):
            datagram = end.keepalive_due(now)
            if datagram is not None:
                self._send(here, there, datagram)
            if end.reconnect_due(now):
                self.reconnects[here] += 1


def test_an_idle_tunnel_survives_both_nats_forgetting_their_mappings() -> None:
    """The NAT-flush regression: with the guest idle, the provider sent nothing while its consumer was unheard,
    so its NAT never made the mapping again, the consumer's keepalives stayed outside and the VM was paused,
    then deleted. Both ends keep alive now: the first packet out of each side reopens its NAT."""
    sim = Simulation(seed=14)
    ends = TunnelEnds(sim)
    sim.add(ends)
    sim.run_for(5.0)
    assert ends.provider.state(sim.clock.now) is TunnelState.UP
    for nat in ends.nats.values():
        nat.forget()
    forgot_at = sim.clock.now
    back = sim.run_until(lambda: ends.provider.last_heard is not None and ends.provider.last_heard > forgot_at, 10.0)
    assert back <= 2 * TIMING.keepalive_s + 0.1
    sim.run_for(60.0)
    assert ends.actions == []  # never paused, never deleted
    assert ends.provider.state(sim.clock.now) is TunnelState.UP
    assert ends.reconnects == {PROVIDER_AT: 0, CONSUMER_AT: 0}
    assert sum(nat.dropped for nat in ends.nats.values()) >= 1  # the NATs did drop the first arrivals


def test_an_end_that_stops_hearing_the_other_asks_for_a_new_handshake_every_timeout() -> None:
    """Roaming: the consumer's address changed, the provider's NAT filters the new one; only a new handshake
    (over a relay, then punched anew) finds the path again, so each silent end asks for one."""
    sim = Simulation(seed=15)
    ends = TunnelEnds(sim, Timing(keepalive_s=1, consumer_timeout_s=3, lease_grace_s=600, delete_after_s=600))
    sim.add(ends)
    sim.run_for(5.0)
    ends.cut = True
    silent_from = sim.clock.now
    sim.run_until(lambda: ends.reconnects[PROVIDER_AT] >= 1, 10.0)
    assert sim.clock.now - silent_from <= TIMING.consumer_timeout_s + SERVICE_TICK_S
    sim.run_for(60.0)
    # at 3, 6, 12, 24, 48 s of silence (doubling), not every tick
    assert ends.reconnects == {PROVIDER_AT: 5, CONSUMER_AT: 5}
    ends.cut = False
    sim.run_until(lambda: ends.provider.live(sim.clock.now), 5.0)
    ends.cut = True
    sim.run_for(TIMING.consumer_timeout_s + SERVICE_TICK_S)
    assert ends.reconnects[PROVIDER_AT] == 6  # heard again: the next silence starts at 3 s once more


def test_a_tunnel_never_heard_asks_for_no_handshake() -> None:
    tunnel = provider()
    assert not tunnel.reconnect_due(100.0)
    tunnel.from_consumer(codec.Keepalive(tunnel.tunnel), 100.0)
    assert not tunnel.reconnect_due(102.9) and tunnel.reconnect_due(103.0) and not tunnel.reconnect_due(105.9)
    assert tunnel.reconnect_due(106.0) and not tunnel.reconnect_due(111.9) and tunnel.reconnect_due(112.0)
    assert tunnel.keepalive_due(104.0) == codec.encode_keepalive(tunnel.tunnel) and tunnel.keepalive_due(104.5) is None


@pytest.mark.parametrize(
    "data",
    [b"\xff", b"[]", b'{"type": "other"}', b'{"type": "vm.rogue", "vm_id": 1}', b"x" * 5000],
)
def test_bad_control_messages_raise_one_error(data: bytes) -> None:
    with pytest.raises(ControlMessageError):
        _parse_rogue(PEER, data)


def test_the_gateway_ruleset_forwards_only_in_internet_mode() -> None:
    isolated = ruleset.nft_ruleset("isolated", "omvm0", 1229, "198.18.255.0/24")
    internet = ruleset.nft_ruleset("internet", "omvm0", 1229, "198.18.255.0/24")
    assert "policy drop" in isolated and "accept" not in isolated and "masquerade" not in isolated
    assert "masquerade" in internet and "maxseg size set 1189" in internet
    assert "net.ipv4.ip_forward=0" in ruleset.sysctls("isolated")


# -- offloaded frames (vnet headers, TCP super-frames) ------------------------------------------


def offloaded(payload: int, *, source: str = VM_MAC, gso_type: int = codec.VNET_GSO_TCPV4, flags: int = 1) -> bytes:
    """A virtio-net header and a TCP/IPv4 frame with ``payload`` bytes (segmented by 1189 if GSO)."""
    header = struct.pack("<BBHHHH", flags, gso_type, 54, 1189 if gso_type else 0, 34, 16)
    return header + frame(54 + payload, source)


@given(st.integers(min_value=1, max_value=65536 - 54))
def test_an_offloaded_super_frame_travels_in_pieces_and_joins_in_any_order(payload: int) -> None:
    data = offloaded(payload)
    tunnel = provider()
    tunnel.from_consumer(codec.Keepalive(tunnel.tunnel), 0.0)
    pieces = tunnel.from_vm_offload(data, 0.1)
    assert pieces and all(len(p) <= MAX_DATAGRAM for p in pieces)
    assert len(pieces) == -(-len(data) // (MAX_DATAGRAM - codec.FRAGMENT_HEADER_BYTES))
    link = ConsumerLink(VM_ID, max_datagram=MAX_DATAGRAM)
    results = [link.from_provider(codec.decode(p), 0.0) for p in reversed(pieces)]
    assert results[-1] == codec.Offloaded(data) and all(r is None for r in results[:-1])
    assert tunnel.counters["offloaded_frames"] == 1 and link.counters["frames_from_vm"] == 1


def test_a_consumer_sends_offloaded_frames_only_once_the_provider_has_sent_it_one() -> None:
    """A port that yields offloaded frames takes them: until the provider showed that, none go its way."""
    tunnel = provider()
    link = ConsumerLink(VM_ID, max_datagram=MAX_DATAGRAM)
    towards_vm = offloaded(20000, source="02:6f:6d:00:00:01")
    assert link.from_gateway_offload(towards_vm, 0.0) == [] and link.counters["dropped_offload"] == 1
    # a bad offloaded frame from the provider shows nothing
    bad = codec.encode_offload(link.tunnel, 1, offloaded(100, gso_type=0x05), MAX_DATAGRAM)
    assert link.from_provider(codec.decode(bad[0]), 0.0) is None and not link.provider_takes_offloads
    tunnel.from_consumer(codec.Keepalive(tunnel.tunnel), 0.0)
    for piece in tunnel.from_vm_offload(offloaded(100), 0.1):
        link.from_provider(codec.decode(piece), 0.1)
    assert link.provider_takes_offloads
    pieces = link.from_gateway_offload(towards_vm, 0.2)
    assert len(pieces) > 1 and link.counters["offloaded_frames"] == 1
    results = [tunnel.from_consumer(codec.decode(p), 0.3) for p in pieces]
    assert results[-1] == codec.Offloaded(towards_vm) and tunnel.counters["frames_to_vm"] == 1


def test_an_offloaded_frame_with_a_foreign_mac_is_rogue() -> None:
    tunnel = provider()
    tunnel.from_consumer(codec.Keepalive(tunnel.tunnel), 0.0)
    assert tunnel.from_vm_offload(offloaded(5000, source="02:00:00:00:be:ef"), 0.1) == []
    assert tunnel.counters["rogue_foreign_mac"] == 1 and tunnel.actions[0] == DeleteVm("rogue")


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (offloaded(100, flags=0x04), "flags"),
        (offloaded(100, gso_type=codec.VNET_GSO_ECN), "GSO type"),
        (offloaded(100, gso_type=0x05), "GSO type"),  # UDP segmentation: not carried
        (offloaded(2000, gso_type=codec.VNET_GSO_NONE), "unsegmented"),
        (struct.pack("<BBHHHH", 1, 1, 54, 0, 34, 16) + frame(1000), "segment size"),
        (struct.pack("<BBHHHH", 1, 1, 54, 1189, 34, 16) + frame(50), "header length"),
        (struct.pack("<BBHHHH", 1, 0, 0, 0, 34, 16) + frame(51), "checksum position"),
        (bytes(20), "at least"),
    ],
)
def test_an_offloaded_frame_the_kernel_should_not_see_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(codec.CodecError, match=why):
        codec.check_offloaded(data)
    link = ConsumerLink(VM_ID, max_datagram=MAX_DATAGRAM)
    pieces = codec.encode_offload(link.tunnel, 1, data, MAX_DATAGRAM)
    assert [link.from_provider(codec.decode(p), 0.0) for p in pieces] == [None] * len(pieces)
    assert link.counters["dropped_bad_offload"] == 1


@given(st.binary(max_size=3000))
def test_the_offload_check_raises_only_its_own_error(data: bytes) -> None:
    with contextlib.suppress(codec.CodecError):
        codec.check_offloaded(data)


def test_offloaded_frames_being_joined_are_bounded() -> None:
    link = ConsumerLink(VM_ID, max_datagram=MAX_DATAGRAM)
    for frame_id in range(codec.MAX_PARTIAL_OFFLOADS * 3):
        first = codec.encode_offload(link.tunnel, frame_id, offloaded(60000), MAX_DATAGRAM)[0]
        assert link.from_provider(codec.decode(first), 0.0) is None
    assert link.counters["dropped_offload_pieces"] == codec.MAX_PARTIAL_OFFLOADS * 2
    too_many = codec.encode_offload(link.tunnel, 1, bytes(codec.MAX_OFFLOAD_PIECES * MAX_DATAGRAM), MAX_DATAGRAM)
    assert too_many == []


FRAMES = st.lists(
    st.tuples(st.integers(min_value=14, max_value=codec.MAX_FRAME), st.sampled_from([VM_MAC, "52:54:00:00:00:99"])),
    max_size=12,
)


@given(FRAMES, st.booleans())
def test_a_batch_of_frames_is_checked_and_carried_as_one_by_one(frames: list[tuple[int, str]], heard: bool) -> None:
    batch = [frame(size, mac) for size, mac in frames]
    ends = [provider(mode=FramesMode.FRAGMENT, policy=RoguePolicy.PAUSE, rogue_threshold=2) for _ in range(2)]
    for end in ends:
        if heard:
            end.from_consumer(codec.Keepalive(end.tunnel), 1.0)
    one_by_one = [datagram for f in batch for datagram in ends[0].from_vm(f, 2.0)]
    assert ends[1].from_vm_batch(batch, 2.0) == one_by_one
    assert ends[1].counters == ends[0].counters and ends[1].actions == ends[0].actions
    assert ends[1].watch.last_sent == ends[0].watch.last_sent


def test_nothing_in_a_batch_after_a_rogue_frame_that_kills_goes_out() -> None:
    tunnel = provider()
    tunnel.from_consumer(codec.Keepalive(tunnel.tunnel), 1.0)
    batch = [frame(100), frame(100), frame(100, "52:54:00:00:00:99"), frame(100)]
    datagrams = tunnel.from_vm_batch(batch, 2.0)
    assert [codec.decode(d) for d in datagrams] == [codec.Frame(tunnel.tunnel, batch[0])] * 2
    assert DeleteVm("rogue") in tunnel.actions and tunnel.deleting
    assert tunnel.counters["dropped_deleting"] == 1 and tunnel.counters["frames_to_consumer"] == 2


@given(st.binary(max_size=1600))
def test_receiving_undecoded_bytes_is_decoding_then_receiving(data: bytes) -> None:
    link, reference = (ConsumerLink(VM_ID, max_datagram=MAX_DATAGRAM, timing=TIMING) for _ in range(2))
    try:
        expected = reference.from_provider(codec.decode(data), 1.0)
    except codec.CodecError:
        with pytest.raises(codec.CodecError):
            link.receive(data, 1.0)
        assert link.watch.last_heard is None  # a malformed datagram is no sign of life
        return
    assert link.receive(data, 1.0) == expected and link.counters == reference.counters
    assert link.watch.last_heard == 1.0


def test_the_consumer_link_carries_a_batch_from_its_gateway() -> None:
    link = ConsumerLink(VM_ID, max_datagram=MAX_DATAGRAM, mode=FramesMode.FRAGMENT, timing=TIMING)
    batch = [frame(60), frame(codec.MAX_FRAME), frame(1000)]
    datagrams = link.from_gateway_batch(batch, 5.0)
    assert [len(d) for d in datagrams] == [65, 766, 766, 1005]
    assert link.counters["frames_to_vm"] == 3 and link.watch.last_sent == 5.0
    tunnel = provider(mode=FramesMode.FRAGMENT)
    received = [tunnel.receive(d, 6.0) for d in datagrams]
    assert [f for f in received if f is not None] == batch


def _datagrams() -> st.SearchStrategy[bytes]:
    tunnel = codec.tunnel_id(VM_ID)
    return st.one_of(
        st.binary(max_size=40),
        st.integers(14, codec.MAX_FRAME + 1).map(lambda size: codec.encode_frame(tunnel, frame(size))),
        st.just(codec.encode_keepalive(tunnel)),
        st.builds(
            lambda index, count, piece: struct.pack(">BIHBB", codec.KIND_FRAGMENT, tunnel, 7, index, count) + piece,
            st.integers(0, 2),
            st.integers(1, 3),
            st.binary(min_size=1, max_size=600),
        ),
        st.builds(
            lambda data: codec.encode_offload(tunnel, 1, data, MAX_DATAGRAM)[0],
            st.sampled_from([codec.VNET_NONE + frame(60), bytes([0x01, 0, 0, 0, 0, 0, 14, 0, 16, 0]) + frame(80)]),
        ),
    )


@given(st.lists(_datagrams(), max_size=12))
def test_a_batch_received_is_each_datagram_received_in_order(datas: list[bytes]) -> None:
    link, reference = (ConsumerLink(VM_ID, max_datagram=MAX_DATAGRAM, mode=FramesMode.FRAGMENT) for _ in range(2))
    expected: list[bytes | codec.Offloaded] = []
    malformed = 0
    for data in datas:
        try:
            frame_or_none = reference.receive(data, 1.0)
        except codec.CodecError:
            malformed += 1
            continue
        if frame_or_none is not None:
            expected.append(frame_or_none)
    received = link.receive_batch(datas, 1.0)
    flat = [f for run in received.runs for f in (run.cut() if isinstance(run, FrameRun) else [run])]
    assert flat == expected and received.malformed == malformed
    assert all(run.frames if isinstance(run, FrameRun) else run for run in received.runs)  # no empty run
    assert link.counters == reference.counters
    assert link.watch.last_heard == reference.watch.last_heard
    assert link.provider_takes_offloads == reference.provider_takes_offloads == received.offloaded
