"""Trust: one formula, local to the observer, computed from verified facts only.

    T(o, s) = P(o, s) * A(s) * M(o, s)

* ``P`` (path trust): the best path o → … → s of at most ``MAX_PATH_LENGTH``
  edges, scored ``min(edge weights) * TRANSITIVITY_DECAY^(hops - 1)``. The edge
  x → y has weight ``(1 - e^(-V/VALUE_SCALE)) * PROOF_PENALTY^proofs(x)``, where
  ``V`` sums the value of verified transactions on x's own chain with y (a
  settled session or an agreed transfer), each decayed by
  ``e^(-age/TAU_TRANSACTION_DAYS)``. An offender's word counts for less.
* ``A`` (age derate): ``min(1, age_days / AGE_MATURITY_DAYS)``; age never adds trust.
* ``M`` (misbehaviour): ``PROOF_PENALTY^proofs(s) * Π_accusers (1 - ACCUSATION_WEIGHT * P(o, accuser))``;
  a proof anyone can verify counts fully, a bare accusation as much as the observer trusts its author.

``T`` lies in [0, 1]; an observer trusts itself fully. Touches nothing.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from omerta_ledger_omt.ledger.chainstate import ChainState

MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class TrustParameters:
    #: Verified value (ledger units) after which a direct edge reaches 1 - 1/e ≈ 0.63.
    value_scale: float = 1000.0
    #: Days over which a transaction's weight decays by 1/e: old good behaviour fades.
    tau_transaction_days: float = 365.0
    #: Factor per extra hop: a friend of a friend counts half as much.
    transitivity_decay: float = 0.5
    #: Longest path considered; beyond four hops the decay leaves under 1/8 anyway.
    max_path_length: int = 4
    #: Days until an identity's trust is no longer derated for youth.
    age_maturity_days: float = 90.0
    #: Factor per verified misbehaviour proof (fork, broken chain rule).
    proof_penalty: float = 0.1
    #: Largest cut of one accusation without proof, made by someone the observer trusts fully.
    accusation_weight: float = 0.5


@dataclass
class TrustGraph:
    """The facts trust is computed from: decayed verified value per directed edge, ages, misbehaviour."""

    edges: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    genesis_ms: dict[str, int] = field(default_factory=dict)
    proofs: dict[str, int] = field(default_factory=dict)
    accusers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add_value(self, truster: str, trusted: str, value: float) -> None:
        if truster != trusted and value > 0:
            row = self.edges[truster]
            row[trusted] = row.get(trusted, 0.0) + value

    @classmethod
    def from_states(
        cls,
        states: Iterable[ChainState],
        proof_counts: Mapping[str, int],
        now_ms: int,
        params: TrustParameters,
    ) -> TrustGraph:
        graph = cls(proofs=dict(proof_counts))
        tau_ms = params.tau_transaction_days * MS_PER_DAY
        for state in states:
            if state.genesis_ms is not None:
                graph.genesis_ms[state.owner] = state.genesis_ms
            for fact in state.interactions:
                decay = math.exp(-max(0, now_ms - fact.time_ms) / tau_ms)
                graph.add_value(state.owner, fact.counterparty, fact.value * decay)
            for subject, _reason, _proof in state.accusations:
                if subject != state.owner:
                    graph.accusers[subject].add(state.owner)
        return graph


@dataclass
class PathResult:
    score: dict[str, float]
    hops: dict[str, int]
    preds: list[dict[str, str]]


class TrustModel:
    """Computes ``T(observer, ·)`` over a :class:`TrustGraph` and explains single values."""

    def __init__(self, graph: TrustGraph, params: TrustParameters | None = None) -> None:
        self.graph = graph
        self.params = params or TrustParameters()

    def edge_weight(self, truster: str, value: float) -> float:
        p = self.params
        return (1.0 - math.exp(-value / p.value_scale)) * p.proof_penalty ** self.graph.proofs.get(truster, 0)

    def paths(self, observer: str) -> PathResult:
        """Best bounded-length max-min path score from ``observer`` to every reachable identity."""
        p = self.params
        score: dict[str, float] = {}
        hops: dict[str, int] = {}
        preds: list[dict[str, str]] = [{}]
        frontier: dict[str, float] = {observer: 1.0}
        for k in range(1, p.max_path_length + 1):
            reached: dict[str, float] = {}
            pred: dict[str, str] = {}
            for node, strength in frontier.items():
                penalty = p.proof_penalty ** self.graph.proofs.get(node, 0)
                for target, value in self.graph.edges.get(node, {}).items():
                    if target == observer:
                        continue
                    weight = (1.0 - math.exp(-value / p.value_scale)) * penalty
                    carried = weight if weight < strength else strength
                    if carried > reached.get(target, 0.0):
                        reached[target] = carried
                        pred[target] = node
            preds.append(pred)
            factor = p.transitivity_decay ** (k - 1)
            for target, carried in reached.items():
                if carried * factor > score.get(target, 0.0):
                    score[target] = carried * factor
                    hops[target] = k
            frontier = reached
            if not frontier:
                break
        return PathResult(score, hops, preds)

    def age_derate(self, subject: str, now_ms: int) -> float:
        genesis = self.graph.genesis_ms.get(subject)
        if genesis is None:
            return 0.0
        return min(1.0, max(0, now_ms - genesis) / (self.params.age_maturity_days * MS_PER_DAY))

    def misbehaviour(self, subject: str, path_scores: Mapping[str, float], observer: str) -> float:
        factor = self.params.proof_penalty ** self.graph.proofs.get(subject, 0)
        for accuser in self.graph.accusers.get(subject, ()):
            credibility = 1.0 if accuser == observer else path_scores.get(accuser, 0.0)
            factor *= 1.0 - self.params.accusation_weight * credibility
        return factor

    def trust_all(self, observer: str, now_ms: int) -> dict[str, float]:
        """``T(observer, s)`` for every identity reachable from the observer."""
        result = self.paths(observer)
        trust = {
            subject: base * self.age_derate(subject, now_ms) * self.misbehaviour(subject, result.score, observer)
            for subject, base in result.score.items()
        }
        trust[observer] = 1.0
        return trust

    def explain(self, observer: str, subject: str, now_ms: int) -> dict[str, Any]:
        """Every factor of ``T(observer, subject)``, the best path, and the parameters used."""
        if subject == observer:
            return {"observer": observer, "subject": subject, "trust": 1.0, "note": "an observer trusts itself"}
        result = self.paths(observer)
        base = result.score.get(subject, 0.0)
        path = self._path(result, subject)
        edges = []
        for truster, trusted in itertools.pairwise(path):
            value = self.graph.edges.get(truster, {}).get(trusted, 0.0)
            edges.append({"from": truster, "to": trusted, "value": value, "weight": self.edge_weight(truster, value)})
        age = self.age_derate(subject, now_ms)
        genesis = self.graph.genesis_ms.get(subject)
        proofs = self.graph.proofs.get(subject, 0)
        accusers = sorted(self.graph.accusers.get(subject, ()))
        misbehaviour = self.misbehaviour(subject, result.score, observer)
        return {
            "observer": observer,
            "subject": subject,
            "trust": base * age * misbehaviour,
            "path_trust": base,
            "path": path,
            "edges": edges,
            "hops": result.hops.get(subject, 0),
            "age_days": None if genesis is None else max(0, now_ms - genesis) / MS_PER_DAY,
            "age_derate": age,
            "proofs": proofs,
            "accusers": [{"accuser": a, "credibility": result.score.get(a, 0.0)} for a in accusers],
            "misbehaviour_factor": misbehaviour,
            "parameters": asdict(self.params),
        }

    def _path(self, result: PathResult, subject: str) -> list[str]:
        hops = result.hops.get(subject)
        if hops is None:
            return []
        path = [subject]
        node = subject
        for k in range(hops, 0, -1):
            node = result.preds[k][node]
            path.append(node)
        return list(reversed(path))


def explanation_text(info: Mapping[str, Any]) -> list[str]:
    """Lines for ``omerta ledger trust PEER``: how the number was reached."""
    if "path_trust" not in info:
        return [f"trust {info['trust']:.3f}: {info.get('note', '')}"]
    lines = [
        f"trust {info['trust']:.4f} = path {info['path_trust']:.4f} * age {info['age_derate']:.3f}"
        f" * misbehaviour {info['misbehaviour_factor']:.3f}"
    ]
    if info["path"]:
        lines.append(
            f"best path ({info['hops']} hop(s), decay {info['parameters']['transitivity_decay']} per extra hop):"
        )
        for edge in info["edges"]:
            lines.append(
                f"  {edge['from'][:12]} -> {edge['to'][:12]}  verified value {edge['value']:.1f}"
                f"  weight {edge['weight']:.4f}"
            )
    else:
        lines.append("no path of verified transactions from this node to the peer: path trust 0")
    age = info["age_days"]
    lines.append(
        "identity age unknown (no identity block held): derate 0"
        if age is None
        else f"identity age {age:.1f} d of {info['parameters']['age_maturity_days']:.0f} d to maturity"
    )
    lines.append(f"verified misbehaviour proofs: {info['proofs']} (each * {info['parameters']['proof_penalty']})")
    for accuser in info["accusers"]:
        lines.append(f"accused by {accuser['accuser'][:12]} (credibility {accuser['credibility']:.3f})")
    return lines
