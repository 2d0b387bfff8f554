from __future__ import annotations

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from omerta_ledger_omt.ledger.blocks import GENESIS_PREV, Block, BlockKind
from omerta_ledger_omt.ledger.encoding import canonical
from omerta_ledger_omt.ledger.errors import InvalidBlockError

from .conftest import START_MS, identity


def genesis(name: str = "alice") -> Block:
    return Block.create(identity(name), 0, GENESIS_PREV, BlockKind.IDENTITY, START_MS, {})


def test_block_round_trips_through_bytes_and_verifies() -> None:
    block = genesis()
    again = Block.decode(block.encode())
    assert again == block
    assert again.hash == block.hash and len(block.hash) == 32


def test_tampered_payload_fails_the_signature() -> None:
    first = genesis()
    nxt = Block.create(identity("alice"), 1, first.hash, BlockKind.BURN, START_MS, {"amount": 5})
    wire = nxt.to_wire()
    wire["payload"] = {"amount": 500}
    with pytest.raises(InvalidBlockError, match="bad signature"):
        Block.from_wire(wire)


def test_signature_of_another_key_is_refused() -> None:
    wire = genesis("alice").to_wire()
    wire["sig"] = genesis("bob").signature
    with pytest.raises(InvalidBlockError, match="bad signature"):
        Block.from_wire(wire)


def test_owner_swapped_is_refused() -> None:
    wire = genesis("alice").to_wire()
    wire["owner"] = str(identity("bob").peer_id)
    with pytest.raises(InvalidBlockError, match="bad signature"):
        Block.from_wire(wire)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"kind": "teleport"}, "unknown block kind"),
        ({"v": 2}, "version"),
        ({"sig": b"short"}, "64 bytes"),
        ({"prev": b"\x00" * 8}, "32-byte"),
        ({"seq": -1}, "non-negative"),
        ({"payload": {"name": 5}}, "field 'name'"),
        ({"payload": {"extra": 1}}, "unknown field"),
    ],
)
def test_malformed_blocks_are_refused_with_a_reason(change: dict[str, object], reason: str) -> None:
    wire = {**genesis().to_wire(), **change}
    with pytest.raises(InvalidBlockError, match=reason):
        Block.from_wire(wire)


def test_genesis_rules() -> None:
    alice = identity("alice")
    with pytest.raises(InvalidBlockError, match="identity block"):
        Block.from_wire(Block.create(alice, 0, GENESIS_PREV, BlockKind.BURN, START_MS, {"amount": 1}).to_wire())
    with pytest.raises(InvalidBlockError, match="at sequence 3"):
        Block.from_wire(Block.create(alice, 3, bytes(32), BlockKind.IDENTITY, START_MS, {}).to_wire())


def test_bytes_that_are_not_canonical_are_refused() -> None:

    wire = genesis().to_wire()
    with pytest.raises(InvalidBlockError, match="not canonically encoded"):
        Block.decode(cbor2.dumps(dict(reversed(list(wire.items())))))
    assert Block.decode(canonical(wire)) == genesis()


def test_payload_schema_is_checked_when_creating() -> None:
    with pytest.raises(InvalidBlockError, match="positive integer"):
        Block.create(
            identity("alice"),
            1,
            bytes(32),
            BlockKind.TRANSFER,
            START_MS,
            {"to": str(identity("bob").peer_id), "amount": 0},
        )


@given(st.data())
def test_any_flipped_byte_is_refused_or_changes_nothing(data: st.DataObject) -> None:
    block = Block.create(identity("alice"), 1, bytes(32), BlockKind.BURN, START_MS, {"amount": 12345})
    raw = bytearray(block.encode())
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    try:
        parsed = Block.decode(bytes(raw))
    except InvalidBlockError:
        return
    assert parsed == block, "a changed byte must never yield a different valid block"
