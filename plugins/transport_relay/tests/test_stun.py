"""STUN Binding codec and client transaction (RFC 8489)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from omerta_transport_relay import stun

from omerta_core.interfaces.common import Endpoint

SERVER = Endpoint("198.18.1.2", 3478)


@pytest.mark.parametrize("mapped", [Endpoint("198.18.7.2", 40000), Endpoint("fd00:0:0:7::2", 1)])
def test_binding_success_round_trip(mapped: Endpoint) -> None:
    txid = stun.new_transaction_id()
    message = stun.decode(stun.encode_binding_success(txid, mapped))
    assert message.type == stun.BINDING_SUCCESS
    assert message.transaction_id == txid
    assert message.mapped_endpoint == mapped


def test_request_carries_magic_cookie_and_fingerprint() -> None:
    request = stun.encode_binding_request(bytes(12))
    assert stun.looks_like_stun(request)
    message = stun.decode(request)
    assert message.type == stun.BINDING_REQUEST
    assert stun.ATTR_FINGERPRINT in message.attributes


def test_rfc5769_sample_ipv4_response_decodes() -> None:
    """RFC 5769 §2.2 test vector (its MESSAGE-INTEGRITY is kept as an opaque attribute)."""
    sample = bytes.fromhex(
        "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220"
        "002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7"
        "80280004c07d4c96"
    )
    assert stun.decode(sample).mapped_endpoint == Endpoint("192.0.2.1", 32853)


def test_corrupted_fingerprint_is_rejected() -> None:
    data = bytearray(stun.encode_binding_request(bytes(12)))
    data[-1] ^= 1
    with pytest.raises(stun.StunError, match="fingerprint"):
        stun.decode(bytes(data))


@given(st.binary(max_size=120))
def test_decode_raises_only_stun_error(data: bytes) -> None:
    try:
        message = stun.decode(data)
    except stun.StunError:
        return
    assert len(message.transaction_id) == 12


def test_transaction_retransmits_with_doubling_timeouts_then_fails() -> None:
    txn = stun.BindingTransaction(SERVER, now=0.0)
    sent_at = []
    now = 0.0
    while not txn.done and now < 60:
        if txn.poll(now) is not None:
            sent_at.append(now)
        now = round(now + 0.01, 2)
    assert txn.failed and txn.result is None
    assert len(sent_at) == stun.MAX_TRANSMISSIONS
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    assert gaps == pytest.approx([0.5, 1.0, 2.0, 4.0], abs=0.02)


def test_transaction_accepts_only_its_own_answer_from_its_server() -> None:
    txn = stun.BindingTransaction(SERVER, now=0.0)
    assert txn.poll(0.0) == txn.request
    mapped = Endpoint("198.18.9.2", 20001)
    other_txid = stun.encode_binding_success(stun.new_transaction_id(), mapped)
    assert not txn.receive(other_txid, SERVER)
    right = stun.encode_binding_success(txn.transaction_id, mapped)
    assert not txn.receive(right, Endpoint("198.18.1.3", 3478))
    assert not txn.receive(b"garbage", SERVER)
    assert txn.receive(right, SERVER)
    assert txn.result == mapped
    assert txn.poll(100.0) is None
