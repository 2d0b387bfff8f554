from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from omerta_ledger_omt.ledger.blocks import GENESIS_PREV, Block, BlockKind
from omerta_ledger_omt.ledger.chainstate import Parameters
from omerta_ledger_omt.ledger.errors import ForkDetectedError, InvalidBlockError, InvalidProofError
from omerta_ledger_omt.ledger.proofs import ForkProof, proof_from_wire
from omerta_ledger_omt.ledger.store import DATABASE_NAME, ChainStore

from .conftest import START_MS, identity


def chain(name: str, length: int) -> list[Block]:
    me = identity(name)
    blocks = [Block.create(me, 0, GENESIS_PREV, BlockKind.IDENTITY, START_MS, {})]
    for seq in range(1, length):
        payload = {"subject": str(identity("x").peer_id), "reason": f"note {seq}"}
        blocks.append(Block.create(me, seq, blocks[-1].hash, BlockKind.ACCUSATION, START_MS + seq, payload))
    return blocks


@pytest.fixture
def store(tmp_path: Path) -> ChainStore:
    return ChainStore(tmp_path, Parameters())


def test_store_uses_wal_and_survives_reopen(tmp_path: Path) -> None:
    store = ChainStore(tmp_path, Parameters())
    for block in chain("alice", 4):
        assert store.add(block) == "added"
    store.close()
    db = sqlite3.connect(tmp_path / DATABASE_NAME)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    again = ChainStore(tmp_path, Parameters())
    head = again.head(str(identity("alice").peer_id))
    assert head is not None and head.seq == 3
    assert again.integrity_check() == "ok"


def test_duplicate_is_harmless_and_gaps_stop_the_head(store: ChainStore) -> None:
    blocks = chain("alice", 5)
    owner = str(identity("alice").peer_id)
    for block in [blocks[0], blocks[1], blocks[3]]:
        store.add(block)
    assert store.add(blocks[1]) == "duplicate"
    head = store.head(owner)
    assert head is not None and head.seq == 1
    assert store.state(owner).head_seq == 1
    store.add(blocks[2])
    head = store.head(owner)
    assert head is not None and head.seq == 3


def test_a_block_that_does_not_link_is_refused(store: ChainStore, tmp_path: Path) -> None:
    mine = chain("alice", 3)
    store.add(mine[0])
    stray = Block.create(identity("alice"), 1, bytes(32), BlockKind.BURN, START_MS, {"amount": 1})
    with pytest.raises(InvalidBlockError, match="does not follow"):
        store.add(stray)
    other = ChainStore(tmp_path / "other", Parameters())
    other.add(mine[2])
    sibling = Block.create(identity("alice"), 1, mine[0].hash, BlockKind.BURN, START_MS, {"amount": 1})
    with pytest.raises(InvalidBlockError, match="does not precede"):
        other.add(sibling)
    assert other.add(mine[1]) == "added"


def test_second_block_at_a_sequence_becomes_a_fork_proof_anyone_can_check(store: ChainStore, tmp_path: Path) -> None:
    blocks = chain("mallory", 2)
    store.add(blocks[0])
    store.add(blocks[1])
    alt = Block.create(identity("mallory"), 1, blocks[0].hash, BlockKind.BURN, START_MS + 1, {"amount": 1})
    with pytest.raises(ForkDetectedError, match="fork"):
        store.add(alt)
    owner = str(identity("mallory").peer_id)
    [proof] = store.proofs(owner)
    assert isinstance(proof, ForkProof)
    # an independent node checks the proof from its wire form alone
    parsed = proof_from_wire(proof.to_wire())
    parsed.verify()
    assert ChainStore(tmp_path / "other", Parameters()).add_proof(parsed)


def test_forged_fork_proofs_are_refused() -> None:
    a = chain("alice", 2)
    b = chain("bob", 2)
    with pytest.raises(InvalidProofError, match="one \\(key, sequence\\)"):
        ForkProof(a[1], b[1]).verify()
    with pytest.raises(InvalidProofError, match="same block"):
        ForkProof(a[1], a[1]).verify()
    wire = ForkProof(a[1], a[0]).to_wire()
    wire["blocks"][1]["payload"] = {"name": "forged"}
    with pytest.raises(InvalidProofError, match="invalid block"):
        proof_from_wire(wire)
