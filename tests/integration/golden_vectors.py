"""Golden test vectors: every message and record the node sends, built by the code itself.

``python tests/integration/golden_vectors.py`` (or ``scripts/vectors``) writes
``docs/vectors/*.json``; ``test_vectors.py`` rebuilds them and fails on any
difference, so the protocol documents, the vectors and the code cannot drift.
Every input is fixed: identities come from fixed seeds, ephemeral keys, indices,
nonces and times are constants, and Ed25519 signatures are deterministic.
Each vector names its ``type``; ``test_vectors.py`` enumerates the message types
in the code's own registries and requires one vector of each.

A protocol gets vectors by adding a builder to :data:`FILES`. Touches only
``docs/vectors/`` when run as a script.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import nacl.bindings
import nacl.signing
from omerta_discovery_gossip import invite as gossip_invite
from omerta_discovery_gossip import network as gossip_network
from omerta_discovery_gossip import peer_record
from omerta_discovery_gossip import wire as gossip_wire
from omerta_ledger_omt.ledger import encoding, escrow, sync, witnesses
from omerta_ledger_omt.ledger.attestations import encode_probe
from omerta_ledger_omt.ledger.audit import AuditResult
from omerta_ledger_omt.ledger.blocks import GENESIS_PREV, Block, BlockKind
from omerta_ledger_omt.ledger.chainstate import Parameters
from omerta_ledger_omt.ledger.engine import SPECS, load_program
from omerta_ledger_omt.ledger.omt_host import encode_envelope
from omerta_ledger_omt.ledger.proofs import (
    ChainRuleProof,
    DoubleLockProof,
    ForkProof,
    ServedCorruptProof,
    SignedLockRequest,
    verified_proof,
)
from omerta_ledger_omt.ledger.settlement import MS_PER_HOUR, split_settlement
from omerta_ledger_omt.ledger.state_query import Answer, FalseAnswerProof
from omerta_ledger_omt.ledger.statements import Statement, StatementKind
from omerta_ledger_omt.omt import ast
from omerta_ledger_omt.omt.runtime import Envelope
from omerta_ledger_omt.omt.runtime.values import canonical_bytes, digest
from omerta_rental import messages as rental_messages
from omerta_transport_relay import punch, stun
from omerta_transport_relay import wire as relay_wire
from omerta_transport_udp import cookie, noise
from omerta_transport_udp import wire as udp_wire
from omerta_transport_udp.core import PROLOGUE, TransportCore
from omerta_vpn import codec as vpn_codec
from omerta_vpn import tunnel as vpn_tunnel

from omerta_core.identity import Identity
from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_core.interfaces.nat import NatFiltering, NatMapping

VECTORS_DIR = Path(__file__).resolve().parents[2] / "docs" / "vectors"

Vector = dict[str, Any]


def identity(n: int) -> Identity:
    """Test identity ``n``: its Ed25519 seed is 32 bytes of value ``n``."""
    return Identity(nacl.signing.SigningKey(bytes([n]) * 32))


def key_entry(n: int) -> dict[str, str]:
    ident = identity(n)
    return {
        "ed25519_seed": (bytes([n]) * 32).hex(),
        "ed25519_public": ident.public_key.hex(),
        "peer_id": str(ident.peer_id),
    }


ALICE, BOB, CAROL = identity(1), identity(2), identity(3)
WITNESSES = [identity(n) for n in range(10, 15)]
KEYS = {
    "alice": key_entry(1),
    "bob": key_entry(2),
    "carol": key_entry(3),
    **{f"witness{i}": key_entry(10 + i) for i in range(5)},
}


def document(description: str, vectors: list[Vector], **extra: Any) -> dict[str, Any]:
    return {"description": description, "keys": KEYS, **extra, "vectors": vectors}


# -- udp transport (docs/wire.md) ---------------------------------------------------------------


def _x25519(ident: Identity) -> tuple[bytes, bytes]:
    private = bytes(ident.signing_key.to_curve25519_private_key())
    return private, noise.public_key(private)


def _seal(key: bytes, receiver_index: int, counter: int, plaintext: bytes) -> bytes:
    return udp_wire.encode_data_header(receiver_index, counter) + noise.encrypt(key, counter, plaintext, b"")


UDP_INIT_INDEX = 0x11223344
UDP_RESPONSE_INDEX = 0x55667788
UDP_INCARNATION_I = bytes.fromhex("0102030405060708")
UDP_INCARNATION_R = bytes.fromhex("1112131415161718")
UDP_TIMESTAMP_NS = 1_700_000_000_000_000_000
UDP_EPHEMERAL_I = bytes(range(0x20, 0x40))
UDP_EPHEMERAL_R = bytes(range(0x40, 0x60))
COOKIE_SECRET = bytes(range(0x60, 0x80))
COOKIE_NONCE = bytes(range(0x80, 0x98))
COOKIE_SOURCE = Endpoint("198.18.0.1", 51820)


def udp_handshake() -> dict[str, Any]:
    """Both handshake messages between alice (initiator) and bob (responder), and the keys they agree."""
    i_private, i_public = _x25519(ALICE)
    r_private, r_public = _x25519(BOB)
    initiator = noise.IKHandshake(
        initiator=True,
        static_private=i_private,
        prologue=PROLOGUE,
        remote_static=r_public,
        ephemeral_private=UDP_EPHEMERAL_I,
    )
    payload1 = ALICE.public_key + UDP_INCARNATION_I + struct.pack("<Q", UDP_TIMESTAMP_NS)
    body1 = udp_wire.encode_handshake_init_body(UDP_INIT_INDEX, initiator.write_message_1(payload1))
    mac1_init = cookie.compute_mac1(r_public, body1)
    init = body1 + mac1_init + cookie.compute_mac2(None, body1 + mac1_init)
    responder = noise.IKHandshake(
        initiator=False, static_private=r_private, prologue=PROLOGUE, ephemeral_private=UDP_EPHEMERAL_R
    )
    assert responder.read_message_1(init[5:-32]) == payload1
    body2 = udp_wire.encode_handshake_response_body(
        UDP_RESPONSE_INDEX, UDP_INIT_INDEX, responder.write_message_2(UDP_INCARNATION_R)
    )
    mac1_response = cookie.compute_mac1(i_public, body2)
    response = body2 + mac1_response + cookie.compute_mac2(None, body2 + mac1_response)
    assert initiator.read_message_2(response[9:-32]) == UDP_INCARNATION_R
    i_send, i_recv = initiator.split()
    r_send, r_recv = responder.split()
    assert i_send.key == r_recv.key and i_recv.key == r_send.key
    assert i_send.key is not None and i_recv.key is not None
    return {
        "init": init,
        "response": response,
        "payload1": payload1,
        "mac1_init": mac1_init,
        "initiator_send_key": i_send.key,
        "initiator_receive_key": i_recv.key,
        "handshake_hash": initiator.handshake_hash,
        "statics": (i_private, i_public, r_private, r_public),
    }


def udp_vectors() -> dict[str, Any]:
    hs = udp_handshake()
    i_private, i_public, r_private, r_public = hs["statics"]
    send_key = hs["initiator_send_key"]
    receive_key = hs["initiator_receive_key"]
    vectors: list[Vector] = [
        {
            "name": "handshake initiation (alice -> bob)",
            "type": "handshake_init",
            "sender_index": UDP_INIT_INDEX,
            "initiator_ephemeral_private": UDP_EPHEMERAL_I.hex(),
            "initiator_ephemeral_public": noise.public_key(UDP_EPHEMERAL_I).hex(),
            "payload": hs["payload1"].hex(),
            "payload_fields": {
                "ed25519_public": ALICE.public_key.hex(),
                "incarnation": UDP_INCARNATION_I.hex(),
                "timestamp_ns": UDP_TIMESTAMP_NS,
            },
            "mac1_key": cookie.mac1_key(r_public).hex(),
            "mac2": "zero: alice holds no cookie",
            "hex": hs["init"].hex(),
        },
        {
            "name": "handshake response (bob -> alice)",
            "type": "handshake_response",
            "sender_index": UDP_RESPONSE_INDEX,
            "receiver_index": UDP_INIT_INDEX,
            "responder_ephemeral_private": UDP_EPHEMERAL_R.hex(),
            "responder_ephemeral_public": noise.public_key(UDP_EPHEMERAL_R).hex(),
            "payload": UDP_INCARNATION_R.hex(),
            "mac1_key": cookie.mac1_key(i_public).hex(),
            "handshake_hash": hs["handshake_hash"].hex(),
            "initiator_send_key": send_key.hex(),
            "initiator_receive_key": receive_key.hex(),
            "hex": hs["response"].hex(),
        },
    ]
    # cookie reply: bob is under load and answers alice's initiation with a cookie for her address
    source = cookie.source_bytes(*COOKIE_SOURCE)
    cookie_value = cookie._keyed(COOKIE_SECRET, source)
    sealed = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        cookie_value, hs["mac1_init"], COOKIE_NONCE, cookie.cookie_key(r_public)
    )
    reply = udp_wire.encode_cookie_reply(UDP_INIT_INDEX, COOKIE_NONCE, sealed)
    opened = cookie.open_cookie_reply(udp_wire.decode_cookie_reply(reply), r_public, hs["mac1_init"])
    assert opened == cookie_value
    body_with_mac1 = hs["init"][:-16]
    vectors.append(
        {
            "name": "cookie reply (bob -> alice, answering the initiation above)",
            "type": "cookie_reply",
            "receiver_index": UDP_INIT_INDEX,
            "cookie_secret": COOKIE_SECRET.hex(),
            "source": f"{COOKIE_SOURCE.host}:{COOKIE_SOURCE.port}",
            "source_bytes": source.hex(),
            "cookie": cookie_value.hex(),
            "cookie_key": cookie.cookie_key(r_public).hex(),
            "nonce": COOKIE_NONCE.hex(),
            "associated_data": hs["mac1_init"].hex(),
            "mac2_of_the_initiation_with_this_cookie": cookie.compute_mac2(cookie_value, body_with_mac1).hex(),
            "hex": reply.hex(),
        }
    )
    # data packets alice -> bob on the new session (bob's index, alice's send key), counters 0, 1, 2, ...
    gossip_tag = udp_wire.channel_tag("gossip")
    message = b"hello, bob"
    reliable = udp_wire.encode_reliable_frame(
        0, udp_wire.FLAG_FIRST | udp_wire.FLAG_LAST, message, len(message), b"ledger.sync"
    )
    first_part = b"first part "
    fragment0 = udp_wire.encode_reliable_frame(1, udp_wire.FLAG_FIRST, first_part, 22, b"ledger.sync")
    fragment1 = udp_wire.encode_reliable_frame(2, udp_wire.FLAG_LAST, b"second part", 0, b"")
    ack = udp_wire.encode_ack_frame(3, [(5, 2), (9, 1)])
    frames: list[tuple[str, list[str], bytes, dict[str, Any]]] = [
        ("keepalive (empty plaintext)", [], b"", {}),
        (
            "datagram frame on channel 'gossip'",
            ["datagram"],
            udp_wire.encode_datagram_frame(gossip_tag, b"ping"),
            {"channel": "gossip", "channel_tag": gossip_tag, "data": b"ping".hex()},
        ),
        (
            "reliable frame: a whole message on channel 'ledger.sync' (first and last fragment)",
            ["reliable"],
            reliable,
            {"channel": "ledger.sync", "seq": 0, "message": message.hex()},
        ),
        (
            "reliable frames: one message in two fragments",
            ["reliable", "reliable"],
            fragment0 + fragment1,
            {"channel": "ledger.sync", "seq": [1, 2], "message": (first_part + b"second part").hex()},
        ),
        (
            "acknowledgement frame: next expected 3, selective ranges 5-6 and 9",
            ["ack"],
            ack,
            {"next_expected": 3, "ranges": [[5, 2], [9, 1]]},
        ),
        (
            "an acknowledgement and a datagram in one packet",
            ["ack", "datagram"],
            udp_wire.encode_ack_frame(1, []) + udp_wire.encode_datagram_frame(gossip_tag, b"pong"),
            {"next_expected": 1, "ranges": [], "channel": "gossip", "data": b"pong".hex()},
        ),
    ]
    for counter, (name, kinds, plaintext, fields) in enumerate(frames):
        vectors.append(
            {
                "name": f"data packet, counter {counter}: {name}",
                "type": "data",
                "frames": kinds,
                "receiver_index": UDP_RESPONSE_INDEX,
                "counter": counter,
                "key": send_key.hex(),
                **fields,
                "plaintext": plaintext.hex(),
                "hex": _seal(send_key, UDP_RESPONSE_INDEX, counter, plaintext).hex(),
            }
        )
    nonce = bytes.fromhex("a1a2a3a4a5a6a7a8")
    vectors.append(
        {
            "name": "identify request",
            "type": "identify_request",
            "nonce": nonce.hex(),
            "hex": udp_wire.encode_identify_request(nonce).hex(),
        }
    )
    vectors.append(
        {
            "name": "identify reply (bob)",
            "type": "identify_reply",
            "nonce": nonce.hex(),
            "hex": udp_wire.encode_identify_reply(nonce, BOB.public_key).hex(),
        }
    )
    vectors.append(
        {
            "name": "channel tags: unkeyed BLAKE2s with a 2-byte digest, read little-endian",
            "type": "channel_tags",
            "tags": {
                name: {
                    "blake2s_2_byte_digest": hashlib.blake2s(name.encode(), digest_size=2).hexdigest(),
                    "tag": udp_wire.channel_tag(name),
                }
                for name in ("gossip", "ledger.sync", "ledger.omt", "relay.punch")
            },
        }
    )
    return document(
        "udp transport, docs/wire.md: alice initiates a session to bob",
        vectors,
        x25519={
            "alice_static_private": i_private.hex(),
            "alice_static_public": i_public.hex(),
            "bob_static_private": r_private.hex(),
            "bob_static_public": r_public.hex(),
        },
        prologue=PROLOGUE.decode(),
    )


# -- relay (docs/nat.md) --------------------------------------------------------------------------


def relay_vectors() -> dict[str, Any]:
    txid = bytes(range(1, 13))
    nonce = bytes(range(0x30, 0x40))
    relay, client = BOB.peer_id, ALICE.peer_id
    statement = relay_wire.allocation_statement(relay, txid, nonce, client)
    packet = bytes.fromhex("14") + bytes(28)  # stands for any sealed session packet
    messages: list[tuple[str, relay_wire.Message, dict[str, Any]]] = [
        (
            "ALLOCATE (alice asks relay bob)",
            relay_wire.Allocate(txid, nonce, client, ALICE.sign(statement)),
            {"signed_bytes": statement.hex()},
        ),
        ("CHALLENGE", relay_wire.Challenge(txid, nonce), {}),
        (
            "ALLOCATED (IPv4 observed endpoint)",
            relay_wire.Allocated(txid, 600, 3479, Endpoint("198.18.0.7", 40000)),
            {},
        ),
        ("ALLOCATED (IPv6 observed endpoint)", relay_wire.Allocated(txid, 600, 0, Endpoint("fd00::7", 40000)), {}),
        ("REFUSED (full)", relay_wire.Refused(txid, relay_wire.RefusalReason.FULL), {}),
        ("SEND (to carol)", relay_wire.Send(CAROL.peer_id, packet), {}),
        ("DATA (from alice)", relay_wire.Data(ALICE.peer_id, packet), {}),
        ("NO_ROUTE (carol)", relay_wire.NoRoute(CAROL.peer_id), {}),
        ("PROBE_ME", relay_wire.ProbeMe(txid), {}),
        ("PROBED", relay_wire.Probed(txid), {}),
    ]
    vectors: list[Vector] = []
    for name, message, extra in messages:
        encoded = relay_wire.encode(message)
        assert relay_wire.decode(encoded) == message
        kind = relay_wire.Kind(encoded[0])
        vectors.append({"name": name, "type": f"relay.{kind.name}", **extra, "hex": encoded.hex()})
    attempt = bytes(range(0xB0, 0xB8))
    for kind in punch.Kind:
        signal = punch.Signal(
            kind,
            attempt,
            NatMapping.ENDPOINT_INDEPENDENT,
            NatFiltering.ADDRESS_AND_PORT_DEPENDENT,
            (Endpoint("198.18.0.7", 40000), Endpoint("fd00::7", 40001)),
        )
        vectors.append(
            {
                "name": f"punch {kind.name} on channel {punch.CHANNEL!r}",
                "type": f"punch.{kind.name}",
                "mapping_index": list(NatMapping).index(signal.mapping),
                "filtering_index": list(NatFiltering).index(signal.filtering),
                "hex": signal.encode().hex(),
            }
        )
    vectors.append(
        {
            "name": "STUN binding request",
            "type": "stun.binding_request",
            "hex": stun.encode_binding_request(txid).hex(),
        }
    )
    vectors.append(
        {
            "name": "STUN binding success (XOR-MAPPED-ADDRESS 198.18.0.7:40000)",
            "type": "stun.binding_success",
            "hex": stun.encode_binding_success(txid, Endpoint("198.18.0.7", 40000)).hex(),
        }
    )
    return document("relay protocol, STUN and hole-punch signalling, docs/nat.md (bob is the relay)", vectors)


# -- gossip (docs/discovery.md) ----------------------------------------------------------------

NETWORK = gossip_network.Network("lab", bytes(range(0xC0, 0xE0)))
RECORD_VERSION = 1_700_000_000_000


def alice_record() -> peer_record.PeerRecord:
    return peer_record.create_record(
        ALICE,
        NETWORK.id,
        (Endpoint("198.18.0.1", 7000), Endpoint("fd00::1", 7000)),
        RECORD_VERSION,
        relays=(BOB.peer_id,),
        capabilities={"relay": True, "vm": {"cpus": 4, "memory_mib": 8192}},
    )


def gossip_vectors() -> dict[str, Any]:
    record = alice_record()
    vectors: list[Vector] = [
        {
            "name": "network id of the network 'lab'",
            "type": "network_id",
            "network_key": NETWORK.key.hex(),
            "network_id": NETWORK.id.hex(),
        },
        {
            "name": "the public network",
            "type": "public_network",
            "network_key": gossip_network.PUBLIC_NETWORK_KEY.hex(),
            "network_id": gossip_network.public_network().id.hex(),
        },
        {
            "name": "alice's peer record in 'lab'",
            "type": "peer_record",
            "capabilities_text": peer_record._canonical_capabilities(record.capabilities),
            "signed_bytes": record.signed_bytes().hex(),
            "signature": record.signature.hex(),
            "hex": msgpack.packb(record.to_wire()).hex(),
        },
    ]
    updates: list[gossip_wire.Update] = [
        gossip_wire.Alive(record),
        gossip_wire.Suspect(CAROL.peer_id, RECORD_VERSION + 5),
        gossip_wire.Dead(CAROL.peer_id, RECORD_VERSION + 6),
    ]
    for update in updates:
        encoded = gossip_wire.encode_update(update)
        vectors.append({"name": f"{type(update).__name__} update", "type": type(update).__name__, "hex": encoded.hex()})
    piggyback = [gossip_wire.encode_update(u) for u in updates[1:]]
    messages: list[tuple[str, gossip_wire.Message, list[bytes] | None]] = [
        ("Ping, seq 7, no updates", gossip_wire.Ping(7), None),
        ("Ping, seq 8, piggybacking Suspect and Dead", gossip_wire.Ping(8), piggyback),
        ("Ack of seq 7 with the observed endpoint", gossip_wire.Ack(7, Endpoint("198.18.0.1", 7000)), None),
        ("Ack of seq 9, no observed endpoint", gossip_wire.Ack(9), None),
        ("PingReq seq 10 for carol", gossip_wire.PingReq(10, CAROL.peer_id), None),
        (
            "Sync request: a digest of one entry, alice's record, want a reply",
            gossip_wire.Sync(
                [(record.peer.public_key[: gossip_wire.DIGEST_KEY_BYTES], record.version)],
                [record],
                want_reply=True,
                part=(0, 1),
            ),
            None,
        ),
        (
            "Sync answer: no digest, no records, the observed endpoint, slice 1 of 2",
            gossip_wire.Sync(None, [], observed=Endpoint("fd00::2", 7001), part=(1, 2)),
            None,
        ),
    ]
    for name, message, updates_wire in messages:
        body = gossip_wire.encode(message, updates_wire)
        frame = NETWORK.seal(body)
        assert NETWORK.open(frame) == body
        vectors.append(
            {
                "name": name,
                "type": type(message).__name__,
                "body": body.hex(),
                "frame_in_lab": frame.hex(),
            }
        )
    invite = gossip_invite.create_invite(
        ALICE, NETWORK, [f"{ALICE.peer_id}@198.18.0.1:7000", "198.18.0.2:7000"], 3600, now=1_700_000_000
    )
    link = invite.link()
    assert gossip_invite.parse_invite(link, now=1_700_000_000) == invite
    vectors.append(
        {
            "name": "invite to 'lab' by alice, expiring at 1700003600",
            "type": "invite",
            "signed_bytes": invite.signed_bytes().hex(),
            "signature": invite.signature.hex(),
            "msgpack": msgpack.packb(
                [
                    gossip_invite.FORMAT_VERSION,
                    NETWORK.name,
                    NETWORK.key,
                    list(invite.bootstrap),
                    ALICE.public_key,
                    invite.expires_at,
                    invite.signature,
                ]
            ).hex(),
            "link": link,
        }
    )
    return document(
        "gossip discovery, docs/discovery.md: frames on the transport channel 'gossip' in the network 'lab'",
        vectors,
        network={"name": NETWORK.name, "key": NETWORK.key.hex(), "id": NETWORK.id.hex()},
    )


# -- ledger (docs/ledger.md) -------------------------------------------------------------------

T0 = 1_700_000_000_000
SESSION_NONCE = bytes(range(0xD0, 0xF0))


def _block_vector(name: str, block: Block) -> Vector:
    body = Block.body_of(block.owner, block.seq, block.prev, block.kind, block.time_ms, block.payload)
    encoded = block.encode()
    assert Block.decode(encoded) == block
    return {
        "name": name,
        "type": f"block.{block.kind}",
        "body_cbor": encoding.canonical(body).hex(),
        "hash": block.hash.hex(),
        "signature": block.signature.hex(),
        "hex": encoded.hex(),
    }


def _statement_vector(name: str, statement: Statement) -> Vector:
    wire = statement.to_wire()
    encoded = encoding.canonical(wire)
    assert Statement.from_wire(encoding.decode(encoded)) == statement
    return {
        "name": name,
        "type": f"statement.{statement.kind}",
        "hashed_cbor": encoding.canonical({"kind": str(statement.kind), "body": statement.body}).hex(),
        "hash": statement.hash.hex(),
        "hex": encoded.hex(),
    }


def _signed_by_witnesses(statement: Statement, count: int = 3) -> Statement:
    for witness in WITNESSES[:count]:
        statement = statement.signed_by(witness)
    return statement


def ledger_vectors() -> dict[str, Any]:
    consumer, provider = str(ALICE.peer_id), str(BOB.peer_id)
    witness_ids = [str(w.peer_id) for w in WITNESSES]
    session_id = escrow.session_id_for(consumer, provider, SESSION_NONCE)
    vectors: list[Vector] = [
        {
            "name": "session id of alice (consumer) and bob (provider)",
            "type": "session_id",
            "consumer": consumer,
            "provider": provider,
            "consumer_nonce": SESSION_NONCE.hex(),
            "hashed_bytes": (
                escrow.SESSION_DOMAIN + consumer.encode() + b"\x00" + provider.encode() + SESSION_NONCE
            ).hex(),
            "session_id": session_id.hex(),
        }
    ]
    provider_nonce, consumer_nonce = bytes(range(16)), bytes(range(16, 32))
    seed = witnesses.selection_seed(session_id, provider_nonce, consumer_nonce)
    candidates = [str(CAROL.peer_id), *witness_ids]
    ranks = {c: hashlib.sha256(seed + PeerId(c).public_key).hexdigest() for c in candidates}
    vectors.append(
        {
            "name": "witness selection: carol and the five witnesses ranked, the three lowest chosen",
            "type": "witness_ranking",
            "session_id": session_id.hex(),
            "provider_nonce": provider_nonce.hex(),
            "consumer_nonce": consumer_nonce.hex(),
            "seed": seed.hex(),
            "candidates": candidates,
            "excluded": [consumer, provider],
            "ranks": ranks,
            "selected": witnesses.select_witnesses([*candidates, consumer], seed, [consumer, provider], 3),
        }
    )
    splits = [
        (1000, 2 * MS_PER_HOUR, 300, 1000),
        (1000, 5_400_000, 300, 500),
        (1000, 10 * MS_PER_HOUR, 300, 0),
        (777, 1_234_567, 1001, 333),
    ]
    for escrow_total, duration_ms, rate, trust in splits:
        split = split_settlement(escrow_total, duration_ms, rate, trust)
        vectors.append(
            {
                "name": f"settlement split: escrow {escrow_total}, {duration_ms} ms at {rate}/h, trust {trust}/1000",
                "type": "settlement_split",
                "inputs": {
                    "escrow_total": escrow_total,
                    "duration_ms": duration_ms,
                    "hourly_rate": rate,
                    "provider_trust_milli": trust,
                    "k_payment_milli": 9000,
                },
                "total": split.total,
                "provider_payment": split.provider_payment,
                "burn": split.burn,
                "refund": split.refund,
            }
        )
    lock = _signed_by_witnesses(escrow.lock_statement(session_id, consumer, provider, 600, witness_ids, T0 + 120_000))
    topup = _signed_by_witnesses(escrow.topup_statement(lock, 600, 200))
    settlement = _signed_by_witnesses(escrow.settlement_statement(lock, 800, 5_400_000, 300, [900, 950, 1000]))
    release = _signed_by_witnesses(escrow.release_statement(lock, "provider never started the VM"))
    statements = {
        StatementKind.LOCK: lock,
        StatementKind.TOPUP: topup,
        StatementKind.SETTLEMENT: settlement,
        StatementKind.RELEASE: release,
    }
    for kind, statement in statements.items():
        vectors.append(_statement_vector(f"{kind} statement signed by witnesses 0-2", statement))
    vectors.extend(_chain_vectors(consumer, provider, session_id, lock, topup, settlement, release))
    vectors.extend(_proof_vectors(session_id))
    vectors.extend(_sync_vectors())
    return document("ledger, docs/ledger.md: alice is the consumer, bob the provider, carol the mint", vectors)


def _chain_vectors(
    consumer: str,
    provider: str,
    session_id: bytes,
    lock: Statement,
    topup: Statement,
    settlement: Statement,
    release: Statement,
) -> list[Vector]:
    """One block of every kind, on chains that link."""
    out: list[Vector] = []
    chains: dict[str, list[Block]] = {}

    def append(ident: Identity, kind: BlockKind, payload: dict[str, Any], name: str) -> Block:
        chain = chains.setdefault(str(ident.peer_id), [])
        prev = chain[-1].hash if chain else GENESIS_PREV
        block = Block.create(ident, len(chain), prev, kind, T0 + 1000 * len(chain), payload)
        chain.append(block)
        out.append(_block_vector(name, block))
        return block

    append(ALICE, BlockKind.IDENTITY, {"name": "alice"}, "alice's identity block")
    append(CAROL, BlockKind.IDENTITY, {}, "carol's identity block (no name)")
    mint = append(CAROL, BlockKind.MINT, {"to": consumer, "amount": 5000, "memo": "genesis"}, "carol mints to alice")
    append(ALICE, BlockKind.AGREEMENT, {"proposal": mint.to_wire()}, "alice accepts the mint")
    transfer = append(ALICE, BlockKind.TRANSFER, {"to": provider, "amount": 100}, "alice transfers to bob")
    append(BOB, BlockKind.IDENTITY, {"name": "bob"}, "bob's identity block")
    append(BOB, BlockKind.AGREEMENT, {"proposal": transfer.to_wire()}, "bob accepts the transfer")
    heads = [[str(ALICE.peer_id), 2, chains[str(ALICE.peer_id)][-1].hash]]
    append(BOB, BlockKind.CHECKPOINT, {"heads": heads}, "bob checkpoints alice's head")
    append(ALICE, BlockKind.BURN, {"amount": 10}, "alice burns")
    append(ALICE, BlockKind.ESCROW_LOCK, {"lock": lock.to_wire()}, "alice locks escrow for bob")
    append(ALICE, BlockKind.ESCROW_TOPUP, {"topup": topup.to_wire()}, "alice tops the lock up")
    append(ALICE, BlockKind.ESCROW_SETTLE, {"settlement": settlement.to_wire()}, "alice settles")
    append(
        BOB,
        BlockKind.ESCROW_PAYMENT,
        {"lock": lock.to_wire(), "settlement": settlement.to_wire()},
        "bob claims his payment",
    )
    append(ALICE, BlockKind.ESCROW_RELEASE, {"release": release.to_wire()}, "a release (shape only)")
    witness = WITNESSES[0]
    append(witness, BlockKind.IDENTITY, {}, "witness 0's identity block")
    append(
        witness,
        BlockKind.WITNESS_COMMITMENT,
        {"session_id": session_id, "lock": lock.hash, "consumer": consumer, "provider": provider, "amount": 600},
        "witness 0 commits to the lock",
    )
    append(
        BOB,
        BlockKind.VM_SESSION,
        {
            "session_id": session_id,
            "counterparty": consumer,
            "role": "provider",
            "event": "end",
            "duration_ms": 5_400_000,
            "reason": "CONSUMER_REQUEST",
        },
        "bob records the end of the VM session",
    )
    append(
        witness,
        BlockKind.VERIFICATION,
        {
            "subject": provider,
            "session_id": session_id,
            "passed": True,
            "detail": "CONSUMER_REQUEST duration_ms=5400000",
        },
        "witness 0 verified bob",
    )
    append(
        witness,
        BlockKind.TRUST_ASSERTION,
        {"subject": provider, "score_milli": -250, "reason": "slow", "evidence": [session_id]},
        "witness 0 states an opinion of bob",
    )
    append(
        witness,
        BlockKind.ACCUSATION,
        {"subject": str(CAROL.peer_id), "reason": "double_lock"},
        "witness 0 accuses carol (without a proof)",
    )
    # spec 03: a requester's record of a state attestation (one of the agreeing signed answers shown)
    statement = {
        "what": "state_answer",
        "session_id": session_id.hex(),
        "subject": consumer,
        "query": "balance",
        "value": 4890,
        "confidence": "HIGH",
        "head_seq": 9,
        "evidence": digest({"head": 9}),
        "witness": str(witness.peer_id),
    }
    answer = Answer(statement, witness.sign(canonical_bytes(statement)).hex())
    attestation = {"subject": consumer, "query": "balance", "value": 4890, "confidence": "HIGH"}
    append(
        witness,
        BlockKind.STATE_ATTESTATION,
        {"session_id": session_id, **attestation, "answers": [answer.to_wire()]},
        "witness 0 records the state attestation of alice's balance (spec 03)",
    )
    # transactions 04 and 05: witness 0 publishes a clean audit of bob, then records a health check of him
    audit = AuditResult(provider, blocks_checked=3, head_seq=2, head_hash="ef" * 32, balance=100).published()
    audit["answered"] = True
    append(
        witness,
        BlockKind.AUDIT_RESULT,
        {"subject": provider, "session_id": session_id, "result": audit, "result_hash": bytes.fromhex(digest(audit))},
        "witness 0 publishes a clean audit of bob (transaction 04)",
    )
    check_session = session_id.hex()
    votes = []
    for member in WITNESSES[:3]:
        vote = {"what": "check_vote", "session_id": check_session, "subject": provider, "clean": True,
                "audit_hash": digest(audit)}  # fmt: skip
        signature = member.sign(canonical_bytes(vote)).hex()
        votes.append(
            {"member": str(member.peer_id), "clean": True, "audit_hash": digest(audit), "signature": signature}
        )
    append(
        witness,
        BlockKind.CHECK_RESULT,
        {
            "subject": provider,
            "session_id": session_id,
            "checked_at_ms": T0 + 60_000,
            "clean": True,
            "audit_hash": bytes.fromhex(digest(audit)),
            "suspicion_milli": 0,
            "votes": votes,
        },
        "witness 0 records a clean health check of bob backed by three votes (transaction 05)",
    )
    return out


def _proof_vectors(session_id: bytes) -> list[Vector]:
    """One misbehaviour proof of each kind, as carried in ``heads`` responses and accusations."""
    genesis = Block.create(ALICE, 0, GENESIS_PREV, BlockKind.IDENTITY, T0, {"name": "alice"})
    burn_10 = Block.create(ALICE, 1, genesis.hash, BlockKind.BURN, T0 + 1000, {"amount": 10})
    burn_20 = Block.create(ALICE, 1, genesis.hash, BlockKind.BURN, T0 + 1000, {"amount": 20})
    head = {"head_seq": 0, "head_hash": genesis.hash.hex(), "available": 500}
    requests = []
    for number, amount in ((1, 300), (2, 400)):
        other_session = escrow.session_id_for(str(ALICE.peer_id), str(BOB.peer_id), bytes([number]) * 32)
        request = {
            "what": "lock_request",
            "session_id": other_session.hex(),
            "consumer": str(ALICE.peer_id),
            "provider": str(BOB.peer_id),
            "amount": amount,
            "hourly_rate": 3600,
            **head,
        }
        requests.append(SignedLockRequest(request, ALICE.sign(canonical_bytes(request)).hex()))
    answer = {
        "what": "state_answer",
        "session_id": session_id.hex(),
        "subject": str(ALICE.peer_id),
        "query": "chain_length",
        "value": 5,
        "confidence": "HIGH",
        "head_seq": 0,
        "evidence": genesis.hash.hex(),
        "witness": str(BOB.peer_id),
    }
    false_answer = FalseAnswerProof(Answer(answer, BOB.sign(canonical_bytes(answer)).hex()), (genesis,))
    edited = Block(ALICE.peer_id, 1, genesis.hash, BlockKind.BURN, T0 + 1000, {"amount": 1}, burn_10.signature)
    segment = [{"hash": b.hash.hex(), "seq": b.seq, "block": b.encode().hex()} for b in (genesis, edited)]
    served = {"type": "CHAIN_RESPONSE", "session": session_id.hex(), "sender": str(ALICE.peer_id),
              "payload": {"segment": segment}}  # fmt: skip
    served_corrupt = ServedCorruptProof({**served, "signature": ALICE.sign(canonical_bytes(served)).hex()}, 1)
    proofs = [
        ("fork: two different blocks of alice at sequence 1", ForkProof(burn_10, burn_20)),
        ("chain rule: alice burns what she does not have", ChainRuleProof((genesis, burn_10))),
        ("double lock: 300 + 400 promised at one head with 500 available", DoubleLockProof(*requests)),
        ("false answer: bob said alice's chain is 5 blocks long at her genesis", false_answer),
        ("served corrupt: alice served an auditor a burn she did not sign", served_corrupt),
    ]
    out = []
    for name, proof in proofs:
        wire = proof.to_wire()
        assert verified_proof(wire, Parameters()).hash == proof.hash
        out.append(
            {
                "name": name,
                "type": f"proof.{proof.kind}",
                "hash": proof.hash.hex(),
                "hex": encoding.canonical(wire).hex(),
            }
        )
    return out


def _sync_vectors() -> list[Vector]:
    block = Block.create(ALICE, 0, GENESIS_PREV, BlockKind.IDENTITY, T0, {"name": "alice"})
    messages: list[tuple[str, dict[str, Any]]] = [
        ("heads request", {"t": "heads?", "id": 1}),
        ("heads response", {"t": "heads", "id": 1, "heads": [[str(ALICE.peer_id), 0, block.hash]], "proofs": []}),
        ("range request", {"t": "range?", "id": 2, "owner": str(ALICE.peer_id), "start": 0, "end": 0}),
        ("range response", {"t": "range", "id": 2, "owner": str(ALICE.peer_id), "blocks": [block.encode()]}),
    ]
    out = []
    for name, message in messages:
        encoded = encoding.canonical(message)
        assert sync.parse(encoded) == message
        out.append({"name": f"ledger.sync {name}", "type": f"sync.{message['t']}", "hex": encoded.hex()})
    return out


# -- .omt runtime envelopes (docs/ledger.md §7) ---------------------------------------------------


def _sample(type_ref: ast.TypeRef, field: str, enums: dict[str, ast.EnumDecl]) -> Any:
    """A fixed value of a spec field type, for an envelope's payload (enum values travel as their names)."""
    if type_ref.name in enums:
        return enums[type_ref.name].values[0].name
    name = type_ref.name.lower()
    if name == "list":
        return [_sample(type_ref.args[0], field, enums)] if type_ref.args else []
    if name in ("map", "dict"):
        return {"example": 1}
    samples: dict[str, Any] = {
        "peer_id": str(CAROL.peer_id),
        "hash": "ab" * 32,
        "signature": "cd" * 64,
        "uint": 42,
        "int": -42,
        "string": f"{field} text",
        "bool": True,
        "timestamp": T0 / 1000 + 0.25,
        "bytes": "0102",
        "float": 0.5,
        "any": None,
    }
    return samples.get(name, f"{type_ref.name}_VALUE")


def omt_vectors() -> dict[str, Any]:
    vectors: list[Vector] = []
    session = escrow.session_id_for(str(ALICE.peer_id), str(BOB.peer_id), SESSION_NONCE).hex()
    for channel, declared in sorted(SPECS.items()):
        spec = declared.file
        program = load_program(declared)
        for message in program.symbols.messages.values():
            payload = {f.name: _sample(f.type, f.name, program.symbols.enums) for f in message.fields}
            envelope = Envelope(message.name, session, str(ALICE.peer_id), str(BOB.peer_id), payload)
            signed_part = canonical_bytes(envelope.signed_part())
            if message.signed:
                envelope = Envelope(
                    envelope.type,
                    envelope.session,
                    envelope.sender,
                    envelope.recipient,
                    payload,
                    ALICE.sign(signed_part).hex(),
                )
            vectors.append(
                {
                    "name": f"{spec}: {message.name} on channel {channel!r} (alice -> bob, fixed field values)",
                    "type": f"{spec}:{message.name}",
                    "signed_part": signed_part.decode(),
                    "text": encode_envelope(envelope).decode(),
                }
            )
    for subject, answer in (("vm", None), ("consumer", True)):
        vectors.append(
            {
                "name": f"probe on 'ledger.omt.probe': subject {subject}, answer {answer}",
                "type": "probe",
                "text": encode_probe(session, subject, 7, answer).decode(),
            }
        )
    lock_result = {
        "session_id": session,
        "consumer": str(ALICE.peer_id),
        "provider": str(BOB.peer_id),
        "amount": 600,
        "status": "ACCEPTED",
        "witnesses": [str(w.peer_id) for w in WITNESSES],
    }
    statement = {k: lock_result[k] for k in ("session_id", "consumer", "provider", "amount", "status")}
    lock_result["witness_signatures"] = [
        {"witness": str(w.peer_id), "value": "ACCEPTED", "signature": w.sign(canonical_bytes(statement)).hex()}
        for w in WITNESSES[:3]
    ]
    vectors.append(
        {
            "name": "spec 00 lock result: what witnesses sign, and HASH(lock_result)",
            "type": "lock_result",
            "lock_statement_text": canonical_bytes(statement).decode(),
            "lock_result_text": canonical_bytes(lock_result).decode(),
            "hash": digest(lock_result),
        }
    )
    tricky = {"b": [1, -2, 0.5, 1e16, 1e-05, True, None], "a": 'é\n"\\\u0001', "A": b"\x00\xff", "é": {}}
    vectors.append(
        {
            "name": "canonical JSON: key order, escapes, floats, bytes as hex",
            "type": "canonical_json",
            "value": "see text: {'b': [1, -2, 0.5, 1e16, 1e-05, True, None], 'a': 'é\\n\"\\\\\\x01', "
            "'A': b'\\x00\\xff', 'é': {}}",
            "text": canonical_bytes(tricky).decode(),
            "utf8_hex": canonical_bytes(tricky).hex(),
            "sha256": digest(tricky),
        }
    )
    return document(
        "the .omt runtime's envelopes (canonical JSON text, UTF-8 on the wire), docs/ledger.md §7",
        vectors,
    )


# -- vpn tunnel (docs/vpn.md) ----------------------------------------------------------------

#: A VM id as the kvm plugin makes them (``uuid4().hex``).
VPN_VM_ID = "c0ffee5a1e0d4b7e9f3a2d1c0b9a8776"
#: The VM's MAC and an Ethernet frame from it (ARP request, padded to the 60-byte minimum).
VPN_VM_MAC = "52:54:00:12:34:56"
VPN_ARP = (
    bytes.fromhex("ffffffffffff")
    + vpn_tunnel.mac_bytes(VPN_VM_MAC)
    + bytes.fromhex("0806 0001 0800 06 04 0001")
    + vpn_tunnel.mac_bytes(VPN_VM_MAC)
    + bytes([198, 18, 255, 2])
    + bytes(6)
    + bytes([198, 18, 255, 1])
).ljust(60, b"\x00")


def _vpn_datagram_vector(name: str, datagram: bytes) -> Vector:
    decoded = vpn_codec.decode(datagram)
    fields = {
        key: value.hex() if isinstance(value, bytes) else value for key, value in dataclasses.asdict(decoded).items()
    }
    kind = next(k for k, v in vpn_codec.KINDS.items() if v == datagram[0])
    return {
        "name": name,
        "type": f"datagram.{kind}",
        "channel": vpn_codec.FRAMES_CHANNEL,
        "fields": fields,
        "hex": datagram.hex(),
    }


def _vpn_offload_vectors(tunnel: int, max_datagram: int) -> list[Vector]:
    """OFFLOAD: a TCP super-frame of two segments (TSO over IPv4, segment size 1189) in two pieces."""
    segment, segments = 1189, 2
    ip = bytes.fromhex("4500") + (40 + segment * segments).to_bytes(2, "big") + bytes.fromhex("0000 4000 4006 0000")
    ip += bytes([198, 18, 255, 2, 198, 18, 255, 1])
    tcp = bytes.fromhex("c350 1451 00000001 00000001 5018 ffff 0000 0000")
    frame = (
        vpn_tunnel.mac_bytes("02:6f:6d:00:00:01")
        + vpn_tunnel.mac_bytes(VPN_VM_MAC)
        + bytes.fromhex("0800")
        + ip
        + tcp
        + bytes(i % 256 for i in range(segment * segments))
    )
    # flags needs-checksum, GSO TCPv4, header length 54, segment size, checksum start 34 at offset 16
    header = struct.pack("<BBHHHH", 1, 1, 54, segment, 34, 16)
    carrier = vpn_tunnel.FrameCarrier(tunnel, max_datagram, vpn_tunnel.FramesMode.FIT, Counter(), "sent", "received")
    pieces = carrier.encode_offload(header + frame)
    joined = vpn_codec.Reassembler(
        vpn_codec.MAX_PARTIAL_OFFLOADS, vpn_codec.VNET_HEADER_BYTES + vpn_codec.MAX_OFFLOAD_FRAME
    )
    assert [joined.add(p) for p in map(vpn_codec.decode, pieces)] == [None] * (len(pieces) - 1) + [header + frame]
    vpn_codec.check_offloaded(header + frame)
    return [
        _vpn_datagram_vector(
            f"OFFLOAD {index + 1} of {len(pieces)}: a virtio-net header (needs checksum, TCPv4 segmentation by "
            f"{segment}) and a {len(frame)}-byte TCP super-frame from the VM (offload id 1; payload 0x00, 0x01, "
            "... mod 256)",
            piece,
        )
        for index, piece in enumerate(pieces)
    ]


def vpn_vectors() -> dict[str, Any]:
    max_datagram = TransportCore(ALICE.signing_key).max_datagram_size
    tunnel = vpn_codec.tunnel_id(VPN_VM_ID)
    vectors: list[Vector] = [
        {
            "name": "tunnel id of a VM: its id's first four bytes, big-endian",
            "type": "tunnel_id",
            "vm_id": VPN_VM_ID,
            "tunnel": tunnel,
            "hex": tunnel.to_bytes(4, "big").hex(),
        },
        {
            "name": "guest MTU whose every frame fits one udp datagram (frames = fit)",
            "type": "fit_mtu",
            "udp_max_datagram": max_datagram,
            "guest_mtu": vpn_codec.fit_mtu(max_datagram),
        },
    ]
    fit = vpn_tunnel.FrameCarrier(tunnel, max_datagram, vpn_tunnel.FramesMode.FIT, Counter(), "sent", "received")
    (whole,) = fit.encode(VPN_ARP)
    vectors.append(_vpn_datagram_vector("FRAME: the VM's 60-byte ARP request, whole", whole))
    big = VPN_ARP[:12] + bytes.fromhex("88b5") + bytes(i % 256 for i in range(vpn_codec.MAX_FRAME - 14))
    fragment = vpn_tunnel.FrameCarrier(
        tunnel, max_datagram, vpn_tunnel.FramesMode.FRAGMENT, Counter(), "sent", "received"
    )
    pieces = fragment.encode(big)
    joined = vpn_codec.Reassembler()
    assert [joined.add(p) for p in map(vpn_codec.decode, pieces)] == [None] * (len(pieces) - 1) + [big]
    for piece in pieces:
        index, count = piece[vpn_codec.FRAGMENT_HEADER_BYTES - 2], piece[vpn_codec.FRAGMENT_HEADER_BYTES - 1]
        vectors.append(
            _vpn_datagram_vector(
                f"FRAGMENT {index + 1} of {count}: a {len(big)}-byte frame (frames = fragment, frame id 1; "
                f"the frame's bytes after its header are 0x00, 0x01, ... mod 256)",
                piece,
            )
        )
    vectors.extend(_vpn_offload_vectors(tunnel, max_datagram))
    keepalive = vpn_tunnel.ConsumerLink(VPN_VM_ID, max_datagram=max_datagram).keepalive_due(0.0)
    assert keepalive is not None
    vectors.append(_vpn_datagram_vector("KEEPALIVE: consumer to provider", keepalive))
    for message in vpn_codec.CONTROL_MESSAGES:
        data = vpn_codec.encode_rogue(VPN_VM_ID, "foreign-source-mac", 1, vpn_tunnel.RoguePolicy.KILL.value)
        assert json.loads(data)["type"] == message
        vectors.append(
            {
                "name": f"{message}: the first foreign-MAC frame, acted on with policy kill",
                "type": f"control.{message}",
                "channel": vpn_codec.CONTROL_CHANNEL,
                "text": data.decode(),
                "hex": data.hex(),
            }
        )
    return document(
        f"the vpn plugin's tunnel datagrams on {vpn_codec.FRAMES_CHANNEL!r} and control messages on "
        f"{vpn_codec.CONTROL_CHANNEL!r}, carried in the udp transport's session, docs/vpn.md",
        vectors,
        vm_id=VPN_VM_ID,
        vm_mac=VPN_VM_MAC,
    )


# -- rental protocol (docs/rental.md) -----------------------------------------------------------

#: A rental id as the consumer makes them (``secrets.token_hex(16)``).
RENTAL_ID = "5e1ec7ed0a11ce0b0b00000000000001"
#: A spec 00 escrow session id (fixed; 32 bytes as hex).
RENTAL_SESSION = hashlib.sha256(b"omerta golden vectors: rental escrow session").hexdigest()
#: One sample of each rental message (fixed values), by ``type``.
RENTAL_SAMPLES: dict[str, rental_messages.Message] = {
    message.TYPE: message
    for message in (
        rental_messages.Request(
            RENTAL_ID, 1, 128, 1, "omk-test", 3600, "compile a kernel", "ssh-ed25519 " + "A" * 68 + " omerta", 100
        ),
        rental_messages.Admitted(RENTAL_ID, 100, 100, VPN_VM_ID),
        rental_messages.Refused(RENTAL_ID, "refused: quiet hours (22-6)"),
        rental_messages.Locked(RENTAL_ID, RENTAL_SESSION),
        rental_messages.Progress(RENTAL_ID, "booting", "booting the VM, 6 s"),
        rental_messages.Ready(RENTAL_ID, VPN_VM_ID, "198.18.255.2", 3_600_000, "ssh-ed25519 " + "B" * 68),
        rental_messages.Heartbeat(RENTAL_ID),
        rental_messages.ToppedUp(RENTAL_ID, 150),
        rental_messages.Extended(RENTAL_ID, 5_400_000),
        rental_messages.Release(RENTAL_ID),
        rental_messages.Ended(RENTAL_ID, "released", 1_234_567),
    )
}


def rental_vectors() -> dict[str, Any]:
    vectors: list[Vector] = []
    for kind, message in RENTAL_SAMPLES.items():
        data = rental_messages.encode(message)
        assert rental_messages.decode(data) == message
        vectors.append(
            {
                "name": f"{kind}: {type(message).__doc__}",
                "type": kind,
                "channel": rental_messages.CHANNEL,
                "text": data.decode(),
                "hex": data.hex(),
            }
        )
    return document(
        f"the rental protocol's messages on the reliable channel {rental_messages.CHANNEL!r}, carried in the "
        "udp transport's session, docs/rental.md",
        vectors,
        rental=RENTAL_ID,
        max_message_bytes=rental_messages.MAX_MESSAGE_BYTES,
        max_text=rental_messages.MAX_TEXT,
    )


#: Every vector file and its builder; ``test_vectors.py`` checks each against the code.
FILES: dict[str, Callable[[], dict[str, Any]]] = {
    "udp.json": udp_vectors,
    "relay.json": relay_vectors,
    "gossip.json": gossip_vectors,
    "ledger.json": ledger_vectors,
    "omt.json": omt_vectors,
    "vpn.json": vpn_vectors,
    "rental.json": rental_vectors,
}


def render(build: Callable[[], dict[str, Any]]) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    VECTORS_DIR.mkdir(parents=True, exist_ok=True)
    for name, build in FILES.items():
        (VECTORS_DIR / name).write_text(render(build), encoding="utf-8")
        print(f"wrote {VECTORS_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
