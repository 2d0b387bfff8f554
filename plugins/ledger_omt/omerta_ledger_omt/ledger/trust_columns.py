"""Trust over many identities, fast: the formula of :mod:`.trust` evaluated over numpy arrays.

:class:`TrustColumns` reads replayed chains into flat arrays (identities numbered;
one row per verified transaction, signed statement, first mention and accusation)
and keeps each chain's rows until its head moves, so recomputing trust after a few
new blocks re-reads only the chains that grew. :func:`trust_all` evaluates
``T = clamp01(P + E) * A * C * M`` for one observer over those arrays, pass by pass
(bounded max-min paths, strong-tie clusters, credibility, evidence) instead of
identity by identity. It returns what :meth:`.trust.TrustModel.trust_all` returns
(a test compares them on random chains); that class stays the readable reference
and explains single values. Touches nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter

import numpy as np
import numpy.typing as npt

from omerta_ledger_omt.ledger.chainstate import ChainState
from omerta_ledger_omt.ledger.trust import MS_PER_DAY, TrustParameters, connected_groups

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

#: Evidence row kinds: the score of a verification comes from the parameters, an assertion's from its block.
PASSED, FAILED, ASSERTED = 0, 1, 2
_NO_ROWS: Ints = np.zeros(0, dtype=np.int64)
_COUNTERPARTY, _VALUE, _TIME = attrgetter("counterparty"), attrgetter("value"), attrgetter("time_ms")


@dataclass
class _Flat:
    """Every held chain's rows, concatenated; one truster's edges are contiguous, rows of stale reads dropped."""

    size: int = 0
    edge_src: Ints = field(default_factory=lambda: _NO_ROWS)
    edge_dst: Ints = field(default_factory=lambda: _NO_ROWS)
    edge_start: Ints = field(default_factory=lambda: _NO_ROWS)  # per identity: its first edge
    edge_count: Ints = field(default_factory=lambda: _NO_ROWS)  # per identity: how many edges it has
    fact_edge: Ints = field(default_factory=lambda: _NO_ROWS)
    fact_value: Floats = field(default_factory=lambda: np.zeros(0))
    fact_time: Ints = field(default_factory=lambda: _NO_ROWS)
    evidence_author: Ints = field(default_factory=lambda: _NO_ROWS)
    evidence: Ints = field(default_factory=lambda: _NO_ROWS.reshape(0, 4))  # subject, kind, score_milli, time
    mention_owner: Ints = field(default_factory=lambda: _NO_ROWS)
    mentions: Ints = field(default_factory=lambda: _NO_ROWS.reshape(0, 2))  # subject, first time_ms
    accusers: Ints = field(default_factory=lambda: _NO_ROWS)
    accused: Ints = field(default_factory=lambda: _NO_ROWS)


@dataclass
class _Batch:
    """Rows read from the chains of ``owners``, as arrays, before they join the held arrays."""

    owners: Ints
    edge_src: Ints
    edge_dst: Ints
    fact_edge: Ints
    fact_value: Floats
    fact_time: Ints
    evidence_author: Ints
    evidence: Ints
    mention_owner: Ints
    mentions: Ints
    accusers: Ints
    accused: Ints


class TrustColumns:
    """Numbered identities and every held chain's trust facts as arrays; :meth:`update` re-reads changed chains."""

    def __init__(self) -> None:
        self.number: dict[str, int] = {}
        self.names: list[str] = []
        self._heads: dict[str, bytes] = {}
        self.flat = _Flat()

    def _id(self, name: str) -> int:
        number = self.number.get(name)
        if number is None:
            number = self.number[name] = len(self.names)
            self.names.append(name)
        return number

    def update(self, states: Iterable[ChainState], *, complete: bool = False) -> int:
        """Take in ``states``, re-reading those whose head moved (a chain's facts change only with its head);
        with ``complete``, drop every chain not among them. Returns how many chains were read."""
        states, heads = list(states), self._heads
        changed = [state for state in states if heads.get(state.owner) != state.head_hash]
        for state in changed:
            heads[state.owner] = state.head_hash
        gone = heads.keys() - {state.owner for state in states} if complete else set()
        for owner in gone:
            del heads[owner]
        if changed or gone:
            self.flat = self._merge(self._read(changed), [self.number[owner] for owner in gone])
        return len(changed)

    def _numbers(self, names: list[str]) -> Ints:
        """Identity numbers of ``names``, numbering the ones not seen before."""
        number = self.number
        try:
            return np.fromiter(map(number.__getitem__, names), dtype=np.int64, count=len(names))
        except KeyError:  # some are new: number them and look again
            for name in set(names).difference(number):
                number[name] = len(self.names)
                self.names.append(name)
            return np.fromiter(map(number.__getitem__, names), dtype=np.int64, count=len(names))

    def _read(self, states: list[ChainState]) -> _Batch:
        """The trust facts of ``states`` as arrays, mapped over whole lists rather than fact by fact."""
        owners = self._numbers([state.owner for state in states])
        facts = list(chain.from_iterable(state.interactions for state in states))
        fact_owner = np.repeat(owners, [len(state.interactions) for state in states])
        counterparty = self._numbers(list(map(_COUNTERPARTY, facts)))
        value = np.fromiter(map(_VALUE, facts), dtype=np.int64, count=len(facts))
        time_ms = np.fromiter(map(_TIME, facts), dtype=np.int64, count=len(facts))
        keep = (value > 0) & (counterparty != fact_owner)
        size = len(self.names)
        pairs, fact_edge = np.unique(fact_owner[keep] * size + counterparty[keep], return_inverse=True)
        said: list[tuple[str, int, int, int]] = []
        authors: list[int] = []
        accusations: list[tuple[int, str]] = []
        for number, state in zip(owners.tolist(), states, strict=True):
            owner = state.owner
            if state.verifications or state.assertions:
                verdicts = {(v.subject, v.session_id, v.check): v for v in state.verifications if v.subject != owner}
                mine = [(v.subject, PASSED if v.passed else FAILED, 0, v.time_ms) for v in verdicts.values()]
                latest = {a.subject: a for a in state.assertions if a.subject != owner}
                mine += [(a.subject, ASSERTED, a.score_milli, a.time_ms) for a in latest.values()]
                said += mine
                authors += [number] * len(mine)
            accusations += [(number, subject) for subject in {s for s, _, _ in state.accusations if s != owner}]
        evidence = np.array([row[1:] for row in said], dtype=np.int64).reshape(-1, 3)
        mentioned = list(chain.from_iterable(state.mentions for state in states))
        first_times = chain.from_iterable(state.mentions.values() for state in states)
        return _Batch(
            owners=owners,
            edge_src=pairs // size,
            edge_dst=pairs % size,
            fact_edge=fact_edge.reshape(-1),
            fact_value=value[keep].astype(np.float64),
            fact_time=time_ms[keep],
            evidence_author=np.array(authors, dtype=np.int64),
            evidence=np.column_stack([self._numbers([row[0] for row in said]), evidence]),
            mention_owner=np.repeat(owners, [len(state.mentions) for state in states]),
            mentions=np.column_stack(
                [
                    self._numbers(mentioned),
                    np.fromiter(first_times, dtype=np.int64, count=len(mentioned)),
                ]
            ),
            accusers=np.array([number for number, _ in accusations], dtype=np.int64),
            accused=self._numbers([subject for _, subject in accusations]),
        )

    def _merge(self, batch: _Batch, dropped: list[int]) -> _Flat:
        """The held arrays without the rows of re-read or dropped chains, with the batch's rows in front."""
        old, size = self.flat, len(self.names)
        stale = np.zeros(size, dtype=bool)
        stale[batch.owners] = True
        stale[np.array(dropped, dtype=np.int64)] = True
        keep_edge = ~stale[old.edge_src]
        renumber = np.cumsum(keep_edge) - 1 + len(batch.edge_dst)
        keep_fact = keep_edge[old.fact_edge]
        keep_said, keep_seen = ~stale[old.evidence_author], ~stale[old.mention_owner]
        keep_accused = ~stale[old.accusers]
        edge_src = np.concatenate([batch.edge_src, old.edge_src[keep_edge]])
        edge_start, edge_count = np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.int64)
        if len(edge_src):
            firsts = np.flatnonzero(np.r_[True, edge_src[1:] != edge_src[:-1]])
            edge_start[edge_src[firsts]] = firsts
            edge_count[edge_src[firsts]] = np.diff(np.r_[firsts, len(edge_src)])
        return _Flat(
            size=size,
            edge_src=edge_src,
            edge_dst=np.concatenate([batch.edge_dst, old.edge_dst[keep_edge]]),
            edge_start=edge_start,
            edge_count=edge_count,
            fact_edge=np.concatenate([batch.fact_edge, renumber[old.fact_edge[keep_fact]]]),
            fact_value=np.concatenate([batch.fact_value, old.fact_value[keep_fact]]),
            fact_time=np.concatenate([batch.fact_time, old.fact_time[keep_fact]]),
            evidence_author=np.concatenate([batch.evidence_author, old.evidence_author[keep_said]]),
            evidence=np.concatenate([batch.evidence, old.evidence[keep_said]]),
            mention_owner=np.concatenate([batch.mention_owner, old.mention_owner[keep_seen]]),
            mentions=np.concatenate([batch.mentions, old.mentions[keep_seen]]),
            accusers=np.concatenate([batch.accusers, old.accusers[keep_accused]]),
            accused=np.concatenate([batch.accused, old.accused[keep_accused]]),
        )


def _gather(flat: _Flat, nodes: Ints) -> tuple[Ints, Ints]:
    """Every edge leaving ``nodes``: the edge indices and, for each, the position of its node in ``nodes``."""
    counts = flat.edge_count[nodes]
    total = int(counts.sum())
    owner_pos = np.repeat(np.arange(len(nodes)), counts)
    firsts = np.cumsum(counts) - counts
    edges = flat.edge_start[nodes][owner_pos] + (np.arange(total) - firsts[owner_pos])
    return edges, owner_pos


def _paths(flat: _Flat, weight: Floats, observer: int, params: TrustParameters) -> Floats:
    """Best bounded-length max-min path score from ``observer`` to every identity (0 where unreached)."""
    score = np.zeros(flat.size)
    nodes, strength = np.array([observer], dtype=np.int64), np.ones(1)
    for k in range(1, params.max_path_length + 1):
        edges, pos = _gather(flat, nodes)
        targets = flat.edge_dst[edges]
        carried = np.minimum(weight[edges], strength[pos])
        keep = (targets != observer) & (carried > 0.0)
        reached = np.zeros(flat.size)
        np.maximum.at(reached, targets[keep], carried[keep])
        np.maximum(score, reached * params.transitivity_decay ** (k - 1), out=score)
        nodes = np.flatnonzero(reached)
        if not len(nodes):
            break
        strength = reached[nodes]
    return score


def _cluster_weights(flat: _Flat, value: Floats, observer: int, params: TrustParameters) -> Floats:
    """``1 / size`` for members of isolated strong-tie clusters that do not hold the observer, else 1."""
    weights = np.ones(flat.size)
    src, dst = flat.edge_src, flat.edge_dst
    outgoing = np.bincount(src, weights=value, minlength=flat.size)
    candidate = np.flatnonzero(value >= params.strong_tie_share * outgoing[src])
    a, b = src[candidate], dst[candidate]
    strong = np.isin(b * flat.size + a, a * flat.size + b) & (params.strong_tie_share * outgoing[b] > 0.0)
    groups = connected_groups(zip(a[strong].tolist(), b[strong].tolist(), strict=True))
    label = np.full(flat.size, -1, dtype=np.int64)
    sizes: list[int] = []
    for group in groups:
        if 1 < len(group) <= params.max_cluster_size:
            label[group] = len(sizes)
            sizes.append(len(group))
    if not sizes:
        return weights
    inside = (label[src] >= 0) & (label[src] == label[dst])
    internal = np.bincount(label[src][inside], weights=value[inside], minlength=len(sizes))
    members = label >= 0
    total = np.bincount(label[members], weights=outgoing[members], minlength=len(sizes))
    isolation = np.divide(internal, total, out=np.zeros(len(sizes)), where=total > 0)
    weighed = members & (label != label[observer])
    weighed[members] &= isolation[label[members]] > params.isolation_threshold
    weights[weighed] = 1.0 / np.asarray(sizes, dtype=np.float64)[label[weighed]]
    return weights


def _misbehaviour(flat: _Flat, penalty: Floats, credibility: Floats, params: TrustParameters) -> Floats:
    """``PROOF_PENALTY^proofs * Π (1 - ACCUSATION_WEIGHT * credibility(accuser))`` per identity."""
    factor = penalty.copy()
    np.multiply.at(factor, flat.accused, 1.0 - params.accusation_weight * credibility[flat.accusers])
    return factor


def trust_all(
    columns: TrustColumns,
    observer: str,
    proof_counts: Mapping[str, int],
    now_ms: int,
    params: TrustParameters | None = None,
) -> dict[str, float]:
    """``T(observer, s)`` for every identity reachable from the observer or spoken of by someone it trusts."""
    p = params or TrustParameters()
    me = columns.number.get(observer)
    if me is None:
        return {observer: 1.0}
    flat = columns.flat
    proofs = np.zeros(flat.size)
    for name, count in proof_counts.items():
        if name in columns.number:
            proofs[columns.number[name]] = count
    penalty = p.proof_penalty**proofs
    decay = np.exp(-np.maximum(0, now_ms - flat.fact_time) / (p.tau_transaction_days * MS_PER_DAY))
    value = np.bincount(flat.fact_edge, weights=flat.fact_value * decay, minlength=len(flat.edge_dst)).astype(
        np.float64
    )
    weight = (1.0 - np.exp(-value / p.value_scale)) * penalty[flat.edge_src]
    path = _paths(flat, weight, me, p)
    reached = path > 0.0

    first_seen = np.full(flat.size, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_seen, flat.mentions[:, 0], flat.mentions[:, 1])
    seen = first_seen < np.iinfo(np.int64).max
    age = np.zeros(flat.size)
    age[seen] = np.minimum(1.0, np.maximum(0, now_ms - first_seen[seen]) / (p.age_maturity_days * MS_PER_DAY))
    cluster = _cluster_weights(flat, value, me, p)

    base = np.where(reached, path * age * cluster, 0.0)
    credible = base.copy()
    credible[me] = 1.0
    base *= np.where(reached, _misbehaviour(flat, penalty, credible, p), 1.0)
    credibility = base.copy()
    credibility[me] = 1.0

    rows, authors = flat.evidence, flat.evidence_author
    scores = np.select(
        [rows[:, 1] == PASSED, rows[:, 1] == FAILED],
        [p.verification_pass_score, -p.verification_fail_score],
        rows[:, 2] / 1000,
    )
    fade_tau = p.tau_assertion_days * MS_PER_DAY
    fade = p.assertion_residual + (1 - p.assertion_residual) * np.exp(-np.maximum(0, now_ms - rows[:, 3]) / fade_tau)
    said = (credibility[authors] > 0.0) & (rows[:, 0] != me)
    subjects = rows[said, 0]
    sums = np.bincount(subjects, weights=(scores * fade * credibility[authors])[said], minlength=flat.size)
    spoken = (np.bincount(subjects, minlength=flat.size) > 0) & (sums != 0.0)
    evidence_term = p.evidence_weight * sums / (1.0 + np.abs(sums))
    combined = np.clip(path + evidence_term, 0.0, 1.0)
    trust = np.where(spoken, combined * age * cluster * _misbehaviour(flat, penalty, credibility, p), base)
    trust[me] = 1.0
    shown = np.flatnonzero(reached | spoken)
    names = columns.names
    result = dict(zip([names[i] for i in shown.tolist()], trust[shown].tolist(), strict=True))
    result[observer] = 1.0
    return result
