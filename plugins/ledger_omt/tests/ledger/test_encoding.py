from __future__ import annotations

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from omerta_ledger_omt.ledger.encoding import HASH_BYTES, canonical, decode, hash_value
from omerta_ledger_omt.ledger.errors import EncodingError
from omerta_ledger_omt.omt.errors import OmtRuntimeError
from omerta_ledger_omt.omt.runtime.values import canonical_bytes

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(values)
def test_round_trip_is_exact(value: object) -> None:
    data = canonical(value)
    assert canonical(decode(data)) == data


def test_key_order_does_not_change_the_bytes() -> None:
    assert canonical({"b": 1, "aa": 2, "a": 3}) == canonical({"a": 3, "aa": 2, "b": 1})
    # length-first ordering: "a" and "b" before "aa"
    assert list(cbor2.loads(canonical({"aa": 0, "b": 0, "a": 0}))) == ["a", "b", "aa"]


def test_hash_is_full_sha256() -> None:
    assert len(hash_value({"x": 1})) == HASH_BYTES == 32


@pytest.mark.parametrize("bad", [1.5, {1: "int key"}, {"s": {1, 2}}, 2**70])
def test_unencodable_values_are_refused_with_a_reason(bad: object) -> None:
    with pytest.raises(EncodingError):
        canonical(bad)


def test_non_canonical_bytes_are_refused() -> None:
    unsorted = cbor2.dumps({"b": 1, "a": 2})  # insertion order, not canonical
    with pytest.raises(EncodingError, match="not canonically encoded"):
        decode(unsorted)
    long_form_int = bytes([0x19, 0x00, 0x01])  # 1 encoded in two bytes
    with pytest.raises(EncodingError, match="not canonically encoded"):
        decode(long_form_int)


def test_floats_and_garbage_are_refused() -> None:
    with pytest.raises(EncodingError):
        decode(cbor2.dumps(1.5))
    with pytest.raises(EncodingError, match="malformed"):
        decode(b"\xff\xff")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "\ud800"])
def test_the_runtime_json_refuses_values_without_a_portable_form(bad: object) -> None:
    with pytest.raises(OmtRuntimeError, match="canonically"):
        canonical_bytes({"x": bad})


def test_the_runtime_json_matches_the_documented_form() -> None:
    value = {"b": [1, -2, 0.5, 1e16, 1e-05, True, None], "a": 'é\n"\\\u0001', "A": b"\x00\xff", "é": {}}
    assert (
        canonical_bytes(value).decode()
        == '{"A":"00ff","a":"é\\n\\"\\\\\\u0001","b":[1,-2,0.5,1e+16,1e-05,true,null],"é":{}}'
    )


def test_bignum_past_the_digit_limit_is_an_encoding_error() -> None:
    # The replay: ValueError (int-to-text digit limit) escaped from _check's error message.
    with pytest.raises(EncodingError, match="64-bit"):
        decode(b"\xc2\x59\x08\x00" + b"\x01" * 2048)
