"""The golden vectors in docs/vectors/ are what the code produces, and cover every message type it sends.

* Each file is rebuilt from the code (``golden_vectors.py``) and must match byte for byte:
  a change of a wire format shows up here and in the documents' vectors together.
* The message types are enumerated from the code's own registries (packet and frame kinds,
  relay kinds, gossip message and update classes, block and statement kinds, sync messages,
  the messages each ``.omt`` spec declares, the vpn tunnel's datagram kinds and control
  messages, the rental protocol's message types); one without a vector fails.
* The udp vectors are checked against a real :class:`TransportCore`: it accepts the golden
  initiation and delivers every golden data packet, and the initiation it builds itself has
  exactly the documented layout and payload.
"""

from __future__ import annotations

import enum
import importlib.util
import struct
import sys
import typing
from pathlib import Path
from types import ModuleType

import nacl.bindings
import pytest
from omerta_discovery_gossip import wire as gossip_wire
from omerta_ledger_omt.ledger import sync
from omerta_ledger_omt.ledger.blocks import BlockKind
from omerta_ledger_omt.ledger.engine import SPECS, load_program
from omerta_ledger_omt.ledger.omt_host import PROBE_CHANNEL
from omerta_ledger_omt.ledger.proofs import Proof
from omerta_ledger_omt.ledger.statements import StatementKind
from omerta_rental import messages as rental_messages
from omerta_transport_relay import punch, stun
from omerta_transport_relay import wire as relay_wire
from omerta_transport_udp import cookie, noise
from omerta_transport_udp import wire as udp_wire
from omerta_transport_udp.core import PROLOGUE, Connected, Delivered, TransportCore
from omerta_vpn import codec as vpn_codec

from omerta_core.interfaces.common import Endpoint


def _load_generator() -> ModuleType:
    path = Path(__file__).with_name("golden_vectors.py")
    spec = importlib.util.spec_from_file_location("golden_vectors", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


golden = _load_generator()


def sent_message_types() -> dict[str, set[str]]:
    """Every message type the node sends, per vector file, read from the code's registries.

    A new protocol adds its file here with its registry of kinds, and a builder to
    ``golden_vectors.FILES``.
    """
    omt = {f"{spec.file}:{name}" for spec in SPECS.values() for name in load_program(spec).symbols.messages}
    assert PROBE_CHANNEL  # the probe messages travel there
    return {
        "udp.json": {*udp_wire.PACKET_TYPES, *(f"frame_{name}" for name in udp_wire.FRAME_KINDS), "keepalive"},
        "relay.json": {
            *(f"relay.{kind.name}" for kind in relay_wire.Kind),
            *(f"punch.{kind.name}" for kind in punch.Kind),
            *(f"stun.{name.removeprefix('encode_')}" for name in dir(stun) if name.startswith("encode_binding_")),
        },
        "gossip.json": {
            *(cls.__name__ for cls in typing.get_args(gossip_wire.Message)),
            *(cls.__name__ for cls in typing.get_args(gossip_wire.Update)),
            "peer_record",
            "invite",
        },
        "ledger.json": {
            *(f"block.{kind}" for kind in BlockKind),
            *(f"statement.{kind}" for kind in StatementKind),
            *(f"sync.{kind}" for kind in sync.MESSAGE_TYPES),
            *(f"proof.{cls.kind}" for cls in typing.get_args(Proof)),
            "session_id",
            "witness_ranking",
            "settlement_split",
        },
        "omt.json": {*omt, "probe", "lock_result"},
        "vpn.json": {
            *(f"datagram.{name}" for name in vpn_codec.KINDS),
            *(f"control.{message}" for message in vpn_codec.CONTROL_MESSAGES),
            "tunnel_id",
            "fit_mtu",
        },
        "rental.json": set(rental_messages.MESSAGE_TYPES),
    }


def covered_types(vectors: list[dict[str, typing.Any]]) -> set[str]:
    """The types the vectors show: their own, and for data packets each frame kind (none: a keepalive)."""
    covered = {vector["type"] for vector in vectors}
    for vector in vectors:
        if "frames" in vector:
            covered |= {f"frame_{kind}" for kind in vector["frames"]} or {"keepalive"}
    return covered


def test_every_vector_file_matches_what_the_code_builds() -> None:
    for name, build in golden.FILES.items():
        path = golden.VECTORS_DIR / name
        assert path.exists(), f"{path} is missing: run scripts/vectors"
        assert path.read_text(encoding="utf-8") == golden.render(build), (
            f"{name} differs from the code: run scripts/vectors"
        )


def missing_vectors() -> dict[str, list[str]]:
    """Per vector file, the message types the code sends that no vector shows."""
    expected = sent_message_types()
    assert set(expected) == set(golden.FILES)
    missing = {}
    for name, types in expected.items():
        uncovered = sorted(types - covered_types(golden.FILES[name]()["vectors"]))
        if uncovered:
            missing[name] = uncovered
    return missing


def test_every_message_type_the_node_sends_has_a_vector() -> None:
    assert missing_vectors() == {}, "add the missing vectors to tests/integration/golden_vectors.py"


def test_a_new_block_kind_without_a_vector_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    members = {kind.name: kind.value for kind in BlockKind}
    monkeypatch.setitem(globals(), "BlockKind", enum.StrEnum("BlockKind", {**members, "LEASE": "lease"}))
    assert missing_vectors() == {"ledger.json": ["block.lease"]}


def test_a_new_vpn_datagram_kind_without_a_vector_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(vpn_codec.KINDS, "PROBE", 0x04)
    assert missing_vectors() == {"vpn.json": ["datagram.PROBE"]}


def test_a_new_rental_message_type_without_a_vector_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(rental_messages.MESSAGE_TYPES, "suspend", rental_messages.Release)
    assert missing_vectors() == {"rental.json": ["suspend"]}


def test_rental_vectors_decode_to_the_messages_they_encode() -> None:
    for vector in golden.rental_vectors()["vectors"]:
        message = rental_messages.decode(bytes.fromhex(vector["hex"]))
        assert (message.TYPE, message.rental) == (vector["type"], golden.RENTAL_ID)
        assert rental_messages.encode(message).decode() == vector["text"]


# -- the udp vectors against the real transport core -------------------------------------------


def _core(identity_number: int, **kwargs: object) -> TransportCore:
    return TransportCore(golden.identity(identity_number).signing_key, **kwargs)


def test_the_transport_core_accepts_the_golden_initiation_and_every_golden_data_packet() -> None:
    vectors = golden.udp_vectors()["vectors"]
    init = bytes.fromhex(vectors[0]["hex"])
    bob = _core(2, incarnation=golden.UDP_INCARNATION_R)
    bob.register_channel("gossip")
    source = Endpoint("198.18.0.1", 7000)
    bob.receive(init, source, now=10.0)
    assert bob.counters["handshakes_answered"] == 1
    assert [type(e) for e in bob.events] == [Connected]
    (route, response), *_ = bob.outputs
    assert route == source and len(response) == udp_wire.HANDSHAKE_RESPONSE_LEN
    # alice, holding the golden ephemeral key, completes the handshake with bob's real response
    i_private, _ = golden._x25519(golden.ALICE)
    alice = noise.IKHandshake(
        initiator=True,
        static_private=i_private,
        prologue=PROLOGUE,
        remote_static=golden._x25519(golden.BOB)[1],
        ephemeral_private=golden.UDP_EPHEMERAL_I,
    )
    assert alice.write_message_1(bytes.fromhex(vectors[0]["payload"])) == init[5:-32]
    decoded = udp_wire.decode_handshake_response(response)
    assert decoded.receiver_index == golden.UDP_INIT_INDEX
    assert cookie.compute_mac1(golden._x25519(golden.ALICE)[1], response[:-32]) == decoded.mac1
    assert alice.read_message_2(decoded.noise_message) == golden.UDP_INCARNATION_R
    send, _ = alice.split()
    assert send.key is not None
    bob.events.clear()
    data = [v for v in vectors if v["type"] == "data"]
    for vector in data:
        plaintext = bytes.fromhex(vector["plaintext"])
        bob.receive(golden._seal(send.key, decoded.sender_index, vector["counter"], plaintext), source, now=10.1)
    delivered = [(e.channel, e.data) for e in bob.events if isinstance(e, Delivered)]
    assert delivered == [
        ("gossip", b"ping"),
        ("ledger.sync", b"hello, bob"),
        ("ledger.sync", b"first part second part"),
        ("gossip", b"pong"),
    ]
    assert bob.counters["keepalives_received"] == 1
    assert not [name for name, count in bob.counters.items() if name.startswith("dropped_") and count]


def test_the_initiation_the_core_builds_has_the_documented_layout() -> None:
    alice = _core(1, clock_ns=lambda: golden.UDP_TIMESTAMP_NS, incarnation=golden.UDP_INCARNATION_I)
    bob_endpoint = Endpoint("198.18.0.2", 7000)
    alice.add_peer(golden.BOB.peer_id, [bob_endpoint], now=0.0)
    (route, packet), *_ = alice.outputs
    assert route == bob_endpoint and packet[0] == 0x11 and len(packet) == 181
    r_private, r_public = golden._x25519(golden.BOB)
    assert cookie.compute_mac1(r_public, packet[:149]) == packet[149:165]
    assert packet[165:] == bytes(16)
    bob = noise.IKHandshake(initiator=False, static_private=r_private, prologue=PROLOGUE)
    payload = bob.read_message_1(packet[5:149])
    assert payload == golden.ALICE.public_key + golden.UDP_INCARNATION_I + struct.pack("<Q", golden.UDP_TIMESTAMP_NS)
    assert bob.rs == nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(golden.ALICE.public_key)


def test_channel_tags_are_two_byte_blake2s_digests() -> None:
    tags = next(v for v in golden.udp_vectors()["vectors"] if v["type"] == "channel_tags")["tags"]
    for name, entry in tags.items():
        assert udp_wire.channel_tag(name) == int.from_bytes(bytes.fromhex(entry["blake2s_2_byte_digest"]), "little")


def test_gossip_vectors_decode_to_the_messages_they_encode() -> None:
    for vector in golden.gossip_vectors()["vectors"]:
        if vector["type"] in ("Ping", "Ack", "PingReq", "Sync"):
            body = bytes.fromhex(vector["body"])
            message = gossip_wire.decode(body)
            assert type(message).__name__ == vector["type"]
            assert not message.rejected
