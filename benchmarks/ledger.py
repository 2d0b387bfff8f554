"""Ledger speed: blocks appended and signed, blocks verified, a full audit of a 10,000-block chain, trust over 10k
and 100k identities (with verifications, assertions, first-seen ages and Sybil clusters), sync throughput, and
a state query (spec 03) between node processes on loopback.

Run with no arguments (``python benchmarks/ledger.py``); prints the headline
figures last, one per line as ``name: value``.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from omerta_ledger_omt.ledger.audit import audit_chain
from omerta_ledger_omt.ledger.blocks import GENESIS_PREV, Block, BlockKind
from omerta_ledger_omt.ledger.chainstate import AssertionFact, ChainState, Interaction, Parameters, VerificationFact
from omerta_ledger_omt.ledger.encoding import decode as parse_wire
from omerta_ledger_omt.ledger.local import LocalLedger
from omerta_ledger_omt.ledger.store import ChainStore
from omerta_ledger_omt.ledger.sync import SyncClient, SyncResponder, parse
from omerta_ledger_omt.ledger.trust import MS_PER_DAY, TrustGraph, TrustModel, TrustParameters
from omerta_ledger_omt.ledger.trust_columns import TrustColumns, trust_all

from omerta_core.control import client
from omerta_core.errors import ControlError
from omerta_core.identity import Identity

APPEND_BLOCKS = 5000
AUDIT_BLOCKS = 10_000
UDP_SYNC_BLOCKS = 2000
CLI = "from omerta_core.cli import run; run()"
EDGES_PER_IDENTITY = 12
VERIFICATIONS_PER_IDENTITY = 2
ASSERTIONS_PER_IDENTITY = 1
SYBILS = 5
#: State queries timed (spec 03: three witnesses, each syncing the subject before it answers).
STATE_QUERIES = 30
QUERY_WITNESSES = 3
GROWN_CHAINS = 100
START_MS = 1_700_000_000_000


def identity(name: str) -> Identity:
    return Identity.from_seed(hashlib.sha256(name.encode()).digest())


def bench_append(root: Path) -> tuple[float, LocalLedger]:
    authority = identity("authority")
    params = Parameters(mint_authorities=frozenset({str(authority.peer_id)}))
    ledger = LocalLedger(authority, ChainStore(root / "authority", params))
    ledger.ensure_identity(START_MS)
    target = str(identity("someone").peer_id)
    started = time.perf_counter()
    for i in range(APPEND_BLOCKS):
        ledger.mint(target, 1 + i % 7, START_MS + i)
    return APPEND_BLOCKS / (time.perf_counter() - started), ledger


def bench_verify(ledger: LocalLedger) -> float:
    raws = list(ledger.store.iter_all())
    started = time.perf_counter()
    for raw in raws:
        Block.decode(raw)
    return len(raws) / (time.perf_counter() - started)


def bench_sync(source: LocalLedger, root: Path) -> float:
    store = ChainStore(root / "receiver", source.params)
    client, responder = SyncClient(store), SyncResponder(source.store)
    started = time.perf_counter()
    pending = [client.begin()]
    while pending:
        reply = responder.answer(parse(pending.pop(0)))
        assert reply is not None
        pending.extend(client.receive(parse(reply)))
    elapsed = time.perf_counter() - started
    assert client.blocks_added == source.store.block_count(), client.summary()
    store.close()
    return client.blocks_added / elapsed


def bench_audit() -> tuple[float, int]:
    """Blocks per second a full audit (transaction 04's pure part) checks: decode, verify, compare, replay."""
    authority = identity("audited")
    params = Parameters(mint_authorities=frozenset({str(authority.peer_id)}))
    target = str(identity("someone").peer_id)
    blocks = [Block.create(authority, 0, GENESIS_PREV, BlockKind.IDENTITY, START_MS, {})]
    for seq in range(1, AUDIT_BLOCKS):
        payload = {"to": target, "amount": 1 + seq % 7}
        blocks.append(Block.create(authority, seq, blocks[-1].hash, BlockKind.MINT, START_MS + seq, payload))
    served = [parse_wire(b.encode()) for b in blocks]
    started = time.perf_counter()
    result = audit_chain(str(authority.peer_id), served, params, held=blocks[::100])
    elapsed = time.perf_counter() - started
    assert result.clean and result.head_seq == AUDIT_BLOCKS - 1, result.findings
    return AUDIT_BLOCKS / elapsed, len(result.findings)


def start_node(state_dir: Path, authority: str | None) -> subprocess.Popen[bytes]:
    """An ``omerta node --plugins udp,omt`` process on loopback (background sync off)."""
    config = state_dir.with_suffix(".toml")
    authorities = f'["{authority}"]' if authority else "[]"
    config.write_text(
        f'[plugins.udp]\nhost = "127.0.0.1"\nport = 0\n[plugins.omt]\nledger_mint_authorities = {authorities}\n'
        "ledger_sync_interval_s = 0\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMERTA_")} | {"OMERTA_CONFIG": str(config)}
    command = [sys.executable, "-c", CLI, "node", "--plugins", "udp,omt", "--state-dir", str(state_dir)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while True:
        try:
            client.call(state_dir, "status", timeout=10)
            return process
        except ControlError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.1)


def peer_id_of(state_dir: Path) -> str:
    result = subprocess.run([sys.executable, "-c", CLI, "id", "--state-dir", str(state_dir)], check=True,
                            capture_output=True, text=True)  # fmt: skip
    return result.stdout.strip()


def bench_sync_udp(root: Path) -> float:
    """Blocks per second one node fetches from another over the udp transport on loopback."""
    source_dir, sink_dir = root / "udp-source", root / "udp-sink"
    authority = peer_id_of(source_dir)
    bystander = str(identity("bystander").peer_id)  # mints go to a peer that is not running: nobody agrees
    processes = [start_node(source_dir, authority), start_node(sink_dir, authority)]
    try:
        for _ in range(UDP_SYNC_BLOCKS):
            client.call(source_dir, "ledger.run", {"name": "mint", "params": {"to": bystander, "amount": 1}})
        port = client.call(source_dir, "status")["services"]["transport"]["udp"]["endpoints"][0].rsplit(":", 1)[1]
        client.call(sink_dir, "udp.add_peer", {"peer": authority, "endpoints": [f"127.0.0.1:{port}"]})
        started = time.perf_counter()
        result = client.call(sink_dir, "ledger.sync", {"peers": [authority], "timeout": 120}, timeout=180)
        elapsed = time.perf_counter() - started
        added = int(result[authority]["blocks_added"])
        assert added == UDP_SYNC_BLOCKS + 1, result
        return added / elapsed
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def bench_state_query(root: Path) -> tuple[float, float]:
    """Median ms of a spec 03 balance query (asker, subject and three witnesses as node processes on loopback),
    and of the baseline: the asker syncing the subject itself and reading its own copy of the balance."""
    dirs = {name: root / f"query-{name}" for name in ["subject", "asker", *(f"w{i}" for i in range(QUERY_WITNESSES))]}
    ids = {name: peer_id_of(path) for name, path in dirs.items()}
    processes = [start_node(path, ids["asker"]) for path in dirs.values()]  # the asker is the mint authority
    try:
        ports = {
            name: client.call(path, "status")["services"]["transport"]["udp"]["endpoints"][0].rsplit(":", 1)[1]
            for name, path in dirs.items()
        }
        for name, path in dirs.items():
            for other, port in ports.items():
                if other != name:
                    client.call(path, "udp.add_peer", {"peer": ids[other], "endpoints": [f"127.0.0.1:{port}"]})
        client.call(dirs["asker"], "ledger.run", {"name": "mint", "params": {"to": ids["subject"], "amount": 1000}})
        client.call(dirs["subject"], "ledger.sync", {"peers": [ids["asker"]], "timeout": 60}, timeout=90)  # agrees
        for name, path in dirs.items():
            if name != "subject":
                client.call(path, "ledger.sync", {"peers": [ids["subject"]], "timeout": 60}, timeout=90)
        witnesses = [ids[name] for name in dirs if name.startswith("w")]
        params = {"peer": ids["subject"], "what": "balance", "witnesses": witnesses, "min_confidence": "HIGH"}
        queries, baseline = [], []
        for _ in range(STATE_QUERIES):
            started = time.perf_counter()
            result = client.call(dirs["asker"], "ledger.query", params, timeout=120)
            queries.append(time.perf_counter() - started)
            assert result["state"] == "ATTESTED" and result["value"] == 1000, result
            started = time.perf_counter()
            client.call(dirs["asker"], "ledger.sync", {"peers": [ids["subject"]], "timeout": 60}, timeout=90)
            client.call(dirs["asker"], "ledger.balance", {"peer": ids["subject"]})
            baseline.append(time.perf_counter() - started)
        return statistics.median(queries) * 1000, statistics.median(baseline) * 1000
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


class Timed(NamedTuple):
    wall_s: float
    cpu_s: float  # this process's CPU time: steadier than wall time on a shared machine


class TrustFigures(NamedTuple):
    reference: Timed
    cold: Timed
    warm: Timed
    reached: int


class Stopwatch:
    """Wall and CPU seconds of the block it times."""

    def __enter__(self) -> Stopwatch:
        self.started = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *_exc: object) -> None:
        self.timed = Timed(time.perf_counter() - self.started[0], time.process_time() - self.started[1])


def synthetic_states(identities: int, seed: int) -> tuple[list[ChainState], str]:
    """Replayed chains of a random network: each identity has verified transactions with a few others."""
    rng = random.Random(seed)
    names = [f"id{i}" for i in range(identities)]
    now = START_MS + 400 * MS_PER_DAY
    params = Parameters()
    states = []
    for name in names:
        state = ChainState(name, params, genesis_ms=now - rng.randint(1, 400) * MS_PER_DAY)
        for _ in range(EDGES_PER_IDENTITY):
            when = now - rng.randint(0, 300) * MS_PER_DAY
            counterparty = names[rng.randrange(identities)]
            state.interactions.append(Interaction(counterparty, rng.randint(50, 2000), when, "session"))
            state.mentions.setdefault(counterparty, when)
        for _ in range(VERIFICATIONS_PER_IDENTITY):
            when = now - rng.randint(0, 300) * MS_PER_DAY
            subject, session = names[rng.randrange(identities)], rng.randbytes(32)
            state.verifications.append(VerificationFact(subject, session, rng.random() < 0.9, when))
        for _ in range(ASSERTIONS_PER_IDENTITY):
            when = now - rng.randint(0, 300) * MS_PER_DAY
            state.assertions.append(AssertionFact(names[rng.randrange(identities)], rng.randint(-1000, 1000), "", when))
        states.append(state)
    states[5].accusations.append((names[7], "bench", None))
    sybils = names[-SYBILS:]  # a cluster trading among itself, with one session with an honest identity
    for state in states[-SYBILS:]:
        for other in sybils:
            if other != state.owner:
                state.interactions.append(Interaction(other, 5000, now, "session"))
    return states, names[0]


def bench_trust(identities: int) -> TrustFigures:
    """Seconds to compute T(observer, *) over the replayed chains of ``identities`` identities, three ways.

    ``reference``: the readable model (:class:`TrustModel` over :meth:`TrustGraph.from_states`), the baseline.
    ``cold``: the array evaluation reading every chain, then computing. ``warm``: what a node does on a trust
    query after new blocks: 100 chains gained a block, the arrays re-read those, then T(observer, *).
    """
    states, observer = synthetic_states(identities, seed=identities)
    now = START_MS + 400 * MS_PER_DAY
    proofs = {"id3": 1}
    with Stopwatch() as reference:
        graph = TrustGraph.from_states(states, proofs, now, TrustParameters())
        expected = TrustModel(graph).trust_all(observer, now)
    del graph
    columns = TrustColumns()
    with Stopwatch() as cold:
        columns.update(states, complete=True)
        first = trust_all(columns, observer, proofs, now)
    assert first.keys() == expected.keys(), "the array evaluation reached other identities than the reference"
    assert max(abs(first[s] - t) for s, t in expected.items()) < 1e-9, "the array evaluation differs"
    rng = random.Random(identities + 1)
    grown = rng.sample(states, GROWN_CHAINS)
    for state in grown:  # a settled session each, recorded by a new block
        state.interactions.append(Interaction(rng.choice(states).owner, rng.randint(50, 2000), now, "session"))
        state.head_hash = rng.randbytes(32)
    with Stopwatch() as warm:
        columns.update(states, complete=True)
        trust = trust_all(columns, observer, proofs, now)
    return TrustFigures(reference.timed, cold.timed, warm.timed, len(trust))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        appended, ledger = bench_append(root)
        verified = bench_verify(ledger)
        synced = bench_sync(ledger, root)
        ledger.store.close()
        synced_udp = bench_sync_udp(root)
        query_ms, own_copy_ms = bench_state_query(root)
    audited, _ = bench_audit()
    trust_10k = bench_trust(10_000)
    trust_100k = bench_trust(100_000)
    print(f"blocks appended+signed (SQLite WAL, rules checked): {APPEND_BLOCKS}")
    print(f"sync: {APPEND_BLOCKS + 1} blocks store to store in one process; {UDP_SYNC_BLOCKS + 1} blocks between two")
    print("      node processes over the udp transport on loopback (fetch, verify, store)")
    print(
        f"trust (T(observer, *) from replayed chains held in memory): {EDGES_PER_IDENTITY} counterparties,"
        f" {VERIFICATIONS_PER_IDENTITY} verifications and {ASSERTIONS_PER_IDENTITY} assertion each;"
        f" reached {trust_10k.reached} / 10000 and {trust_100k.reached} / 100000"
    )
    print(f"       trust_*_identities_s: after {GROWN_CHAINS} chains each gained a block, the arrays re-read those")
    print("       chains and compute T(observer, *) (what a node does per query); SQLite replay not included")
    for label, timed in (
        ("warm (the headline)", trust_100k.warm),
        ("cold (read every chain into arrays, then compute)", trust_100k.cold),
        ("reference (TrustModel over TrustGraph.from_states, the baseline)", trust_100k.reference),
    ):
        print(f"       {label}: {timed.wall_s:.3f} s wall, {timed.cpu_s:.3f} s CPU at 100k")
    ref = trust_100k.reference
    print(f"       reference / warm: {ref.wall_s / trust_100k.warm.wall_s:.1f}x wall,"
          f" {ref.cpu_s / trust_100k.warm.cpu_s:.1f}x CPU; reference / cold: {ref.wall_s / trust_100k.cold.wall_s:.1f}x"
          f" wall, {ref.cpu_s / trust_100k.cold.cpu_s:.1f}x CPU")  # fmt: skip
    print(f"audit: {AUDIT_BLOCKS} blocks served as wire maps; every signature verified, every 100th block compared")
    print("       with a held copy, the chain replayed (balance, locks, trust facts)")
    print(f"state query (spec 03): {STATE_QUERIES} balance queries to {QUERY_WITNESSES} witnesses, all node processes")
    print("       on loopback over udp, each witness syncing the subject before answering, HIGH confidence, timed")
    print(f"       at the control socket; p50 {query_ms:.1f} ms against {own_copy_ms:.1f} ms for the baseline (the")
    print(f"       asker syncing the subject itself, reading its own copy): {query_ms / own_copy_ms:.2f}x")
    print(f"blocks_appended_per_s: {appended:.0f}")
    print(f"sync_inprocess_blocks_per_s: {synced:.0f}")
    print(f"sync_udp_blocks_per_s: {synced_udp:.0f}")
    print(f"trust_10k_identities_s: {trust_10k.warm.wall_s:.3f}")
    print(f"blocks_verified_per_s: {verified:.0f}")
    print(f"audit_blocks_per_s: {audited:.0f}")
    print(f"trust_100k_cold_s: {trust_100k.cold.wall_s:.3f}")
    print(f"trust_100k_identities_s: {trust_100k.warm.wall_s:.3f}")
    print(f"state_query_p50_ms: {query_ms:.1f}")


if __name__ == "__main__":
    main()
