"""The handshake reproduces every cacophony vector for Noise_IK_25519_ChaChaPoly_BLAKE2s byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omerta_transport_udp import noise

VECTORS = json.loads((Path(__file__).parent / "data" / "cacophony_ik.json").read_text())["vectors"]
IK_VECTORS = [v for v in VECTORS if v["protocol_name"] == noise.PROTOCOL_NAME.decode()]


def test_vector_file_holds_the_protocol() -> None:
    assert IK_VECTORS


@pytest.mark.parametrize("vector", IK_VECTORS, ids=lambda v: v["handshake_hash"][:12])
def test_ik_vector(vector: dict) -> None:
    h = bytes.fromhex
    initiator = noise.IKHandshake(
        initiator=True,
        static_private=h(vector["init_static"]),
        prologue=h(vector["init_prologue"]),
        remote_static=h(vector["init_remote_static"]),
        ephemeral_private=h(vector["init_ephemeral"]),
    )
    responder = noise.IKHandshake(
        initiator=False,
        static_private=h(vector["resp_static"]),
        prologue=h(vector["resp_prologue"]),
        ephemeral_private=h(vector["resp_ephemeral"]),
    )
    messages = vector["messages"]
    first = initiator.write_message_1(h(messages[0]["payload"]))
    assert first.hex() == messages[0]["ciphertext"]
    assert responder.read_message_1(first) == h(messages[0]["payload"])
    second = responder.write_message_2(h(messages[1]["payload"]))
    assert second.hex() == messages[1]["ciphertext"]
    assert initiator.read_message_2(second) == h(messages[1]["payload"])
    assert initiator.handshake_hash.hex() == vector["handshake_hash"]
    assert responder.handshake_hash.hex() == vector["handshake_hash"]
    i_send, i_recv = initiator.split()
    r_send, r_recv = responder.split()
    for index, message in enumerate(messages[2:]):
        sender, receiver = (i_send, r_recv) if index % 2 == 0 else (r_send, i_recv)
        ciphertext = sender.encrypt_with_ad(b"", h(message["payload"]))
        assert ciphertext.hex() == message["ciphertext"]
        assert receiver.decrypt_with_ad(b"", ciphertext) == h(message["payload"])


def test_tampered_message_1_is_rejected() -> None:
    resp_static = noise.generate_private_key()
    initiator = noise.IKHandshake(
        initiator=True,
        static_private=noise.generate_private_key(),
        prologue=b"p",
        remote_static=noise.public_key(resp_static),
    )
    message = bytearray(initiator.write_message_1(b"hello"))
    message[40] ^= 1
    responder = noise.IKHandshake(initiator=False, static_private=resp_static, prologue=b"p")
    with pytest.raises(noise.NoiseError):
        responder.read_message_1(bytes(message))
