"""The ledger's decoders raise only their documented error; sync never raises on a peer's message.

Random bytes, random CBOR values and mutations of real blocks, sync messages, proofs, statements,
envelopes and probes (``omerta_core.fuzz``).
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omerta_ledger_omt.ledger import attestations, encoding, sync
from omerta_ledger_omt.ledger.blocks import GENESIS_PREV, Block, BlockKind
from omerta_ledger_omt.ledger.chainstate import Parameters
from omerta_ledger_omt.ledger.errors import (
    EncodingError,
    InvalidBlockError,
    InvalidProofError,
    InvalidStatementError,
    LedgerError,
)
from omerta_ledger_omt.ledger.omt_host import decode_envelope, encode_envelope
from omerta_ledger_omt.ledger.proofs import ForkProof, proof_from_wire
from omerta_ledger_omt.ledger.statements import Statement
from omerta_ledger_omt.ledger.store import DATABASE_NAME, ChainStore
from omerta_ledger_omt.omt.runtime.events import Envelope

from omerta_core.fuzz import mutate, only_raises

from .conftest import START_MS, identity

ALICE = identity("alice")
GENESIS = Block.create(ALICE, 0, GENESIS_PREV, BlockKind.IDENTITY, START_MS, {})
BURN = Block.create(ALICE, 1, GENESIS.hash, BlockKind.BURN, START_MS + 1, {"amount": 5})
OTHER_BURN = Block.create(ALICE, 1, GENESIS.hash, BlockKind.BURN, START_MS + 2, {"amount": 6})
FORK = ForkProof(BURN, OTHER_BURN).to_wire()
ENVELOPE = encode_envelope(Envelope("LOCK_REQUEST", "ab" * 16, str(ALICE.peer_id), "bob", {"amount": 5}, None))
PROBE = attestations.encode_probe("ab" * 16, "vm", 7)
SYNC_MESSAGES = [
    encoding.canonical({"t": "heads?", "id": 1}),
    encoding.canonical({"t": "range?", "id": 2, "owner": str(ALICE.peer_id), "start": 0, "end": 4}),
    encoding.canonical({"t": "heads", "id": 1, "heads": [[str(ALICE.peer_id), 1, BURN.hash]], "proofs": [FORK]}),
    encoding.canonical({"t": "range", "id": 2, "owner": str(ALICE.peer_id), "blocks": [GENESIS.encode()]}),
]
VALID = [GENESIS.encode(), BURN.encode(), encoding.canonical(FORK), *SYNC_MESSAGES]

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.text(max_size=12) | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=16,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ChainStore:
    path: Path = tmp_path_factory.mktemp("contract")
    chain = ChainStore(path, Parameters())
    chain.add(GENESIS)
    return chain


def decoders(data: bytes) -> None:
    only_raises(EncodingError, lambda: encoding.decode(data))
    only_raises(EncodingError, lambda: sync.parse(data))
    only_raises(InvalidBlockError, lambda: Block.decode(data))
    only_raises(EncodingError, lambda: decode_envelope(data))
    only_raises(EncodingError, lambda: attestations.decode_probe(data))


def values(value: Any) -> None:
    only_raises(InvalidBlockError, lambda: Block.from_wire(value))
    only_raises(InvalidProofError, lambda: proof_from_wire(value))
    only_raises(InvalidStatementError, lambda: Statement.from_wire(value))


def sync_both_ways(store: ChainStore, data: bytes) -> None:
    """A peer's sync message reaches the responder and a client expecting ids 1 and 2; neither raises."""
    message = only_raises(EncodingError, lambda: sync.parse(data))
    if message is None:
        return
    if sync.is_request(message):
        sync.SyncResponder(store).answer(message)
        return
    client = sync.SyncClient(store)
    client.begin()
    client.outstanding[2] = (str(ALICE.peer_id), 0, 4)
    client.receive(message)


@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    decoders(data)


@settings(max_examples=300)
@given(st.sampled_from([*VALID, ENVELOPE, PROBE]), st.randoms(use_true_random=False))
def test_mutated_bytes(valid: bytes, rng: random.Random) -> None:
    decoders(mutate(valid, rng))


@given(VALUES)
def test_random_values(value: Any) -> None:
    values(value)
    data = only_raises(EncodingError, lambda: encoding.canonical(value))
    if data is not None:
        decoders(data)


@settings(max_examples=300)
@given(st.sampled_from([GENESIS.encode(), BURN.encode(), encoding.canonical(FORK)]), st.randoms(use_true_random=False))
def test_mutated_values(valid: bytes, rng: random.Random) -> None:
    value = only_raises(EncodingError, lambda: encoding.decode(mutate(valid, rng)))
    values(value)


@settings(max_examples=300)
@given(st.sampled_from(SYNC_MESSAGES), st.randoms(use_true_random=False))
def test_sync_takes_mutated_messages_without_raising(store: ChainStore, message: bytes, rng: random.Random) -> None:
    sync_both_ways(store, mutate(message, rng))


@given(st.dictionaries(st.sampled_from(["t", "id", "heads", "proofs", "blocks", "owner", "start", "end"]), VALUES))
def test_sync_takes_random_fields_without_raising(store: ChainStore, message: dict[str, Any]) -> None:
    message.setdefault("t", "range")
    message.setdefault("id", 2)
    data = only_raises(EncodingError, lambda: encoding.canonical(message))
    if data is not None:
        sync_both_ways(store, data)


@given(st.text(max_size=200))
def test_json_envelopes_and_probes_of_random_text(text: str) -> None:
    data = text.encode()
    only_raises(EncodingError, lambda: decode_envelope(data))
    only_raises(EncodingError, lambda: attestations.decode_probe(data))


@pytest.mark.parametrize("data", [b"[" * 100_000, b'{"session": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"])
def test_deeply_nested_json_envelopes_and_probes(data: bytes) -> None:
    only_raises(EncodingError, lambda: decode_envelope(data))
    only_raises(EncodingError, lambda: attestations.decode_probe(data))


@settings(max_examples=30)
@given(st.binary(min_size=1, max_size=4096))
def test_damaged_chain_store_file_is_a_ledger_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / DATABASE_NAME).write_bytes(data)
        chain = only_raises(LedgerError, lambda: ChainStore(Path(directory), Parameters()))
        if chain is not None:
            chain.close()
