"""Trust: one formula, local to the observer, computed from verified facts only.

    T(o, s) = clamp01(P(o, s) + E(o, s)) * A(s) * C(o, s) * M(o, s)

* ``P`` (path trust): the best path o → … → s of at most ``MAX_PATH_LENGTH``
  edges, scored ``min(edge weights) * TRANSITIVITY_DECAY^(hops - 1)``. The edge
  x → y has weight ``(1 - e^(-V/VALUE_SCALE)) * PROOF_PENALTY^proofs(x)``, where
  ``V`` sums the value of verified transactions on x's own chain with y (a
  settled session or an agreed transfer), each decayed by
  ``e^(-age/TAU_TRANSACTION_DAYS)``. An offender's word counts for less.
* ``E`` (evidence): what others signed about s — verification outcomes (a
  witness's ``verification`` block: pass ``+VERIFICATION_PASS_SCORE``, fail
  ``-VERIFICATION_FAIL_SCORE``) and trust assertions (``score_milli / 1000``) —
  each weighted by the author's credibility (the observer's trust in the author
  before evidence, ``B(o, a) = P * A * C * M``) and decayed to a residual:
  ``X = Σ score * B(o, author) * (RESIDUAL + (1 - RESIDUAL) e^(-age/TAU_ASSERTION_DAYS))``,
  ``E = EVIDENCE_WEIGHT * X / (1 + |X|)`` (saturating: repetition buys little).
* ``A`` (age derate): ``min(1, age_days / AGE_MATURITY_DAYS)`` with the age
  measured from the first time *another* identity recorded s on its own chain,
  never from s's own identity block; age never adds trust.
* ``C`` (Sybil cluster): identities joined by strong ties (x and y each record
  with the other at least ``STRONG_TIE_SHARE`` of all the value their own chain
  records) form a cluster; a cluster of 2..``MAX_CLUSTER_SIZE`` members, not
  holding the observer, whose members' recorded value is more than
  ``ISOLATION_THRESHOLD`` with each other counts ``1 / size`` for each member.
* ``M`` (misbehaviour): ``PROOF_PENALTY^proofs(s) * Π_accusers (1 - ACCUSATION_WEIGHT * B(o, accuser))``;
  a proof anyone can verify counts fully, a bare accusation as much as the observer trusts its author.

``T`` lies in [0, 1]; an observer trusts itself fully. Touches nothing.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple, TypeVar

from omerta_ledger_omt.ledger.chainstate import ChainState

MS_PER_DAY = 86_400_000
Node = TypeVar("Node", bound=Hashable)


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
    #: Score of a passed verification by a witness (a failed one weighs double: failing is the rarer signal).
    verification_pass_score: float = 0.5
    #: Score (subtracted) of a failed verification.
    verification_fail_score: float = 1.0
    #: Days over which an assertion or verification fades by 1/e towards its residual.
    tau_assertion_days: float = 90.0
    #: Share of an assertion's weight that never fades: a proven bad session is not forgotten.
    assertion_residual: float = 0.1
    #: Most trust evidence can add or remove: a saturated sum of fully credible praise adds this.
    evidence_weight: float = 0.5
    #: x and y are strongly tied when each records at least this share of its own chain's value with the other.
    strong_tie_share: float = 0.2
    #: A strong-tie cluster whose members record more than this share of their value among themselves is weighted.
    isolation_threshold: float = 0.9
    #: Largest strong-tie cluster weighted; bigger ones are communities, not farms (and the path bounds them).
    max_cluster_size: int = 64


class Evidence(NamedTuple):
    """One signed statement about a subject: its author, what it is, its signed score and when it was made."""

    subject: str
    author: str
    kind: str  # "verification" or "assertion"
    score: float
    time_ms: int


@dataclass
class TrustGraph:
    """The facts trust is computed from: decayed verified value per directed edge, ages, evidence, misbehaviour."""

    edges: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    #: Earliest time another identity recorded each identity on its own chain.
    first_seen_ms: dict[str, int] = field(default_factory=dict)
    #: The identity block's own time, shown next to ``first_seen_ms`` and never used.
    claimed_genesis_ms: dict[str, int] = field(default_factory=dict)
    proofs: dict[str, int] = field(default_factory=dict)
    accusers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    #: Verifications and assertions, by author: only credible authors' words are looked at.
    evidence_by_author: dict[str, list[Evidence]] = field(default_factory=lambda: defaultdict(list))

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
        pass_score, fail_score = params.verification_pass_score, -params.verification_fail_score
        first_seen, exp = graph.first_seen_ms, math.exp
        for state in states:
            owner = state.owner
            if state.genesis_ms is not None:
                graph.claimed_genesis_ms[owner] = state.genesis_ms
            row = graph.edges[owner]
            for fact in state.interactions:
                counterparty = fact.counterparty
                if counterparty == owner or fact.value <= 0:
                    continue
                value = fact.value * exp(-max(0, now_ms - fact.time_ms) / tau_ms)
                row[counterparty] = row.get(counterparty, 0.0) + value
            for subject, time_ms in state.mentions.items():
                if time_ms < first_seen.get(subject, time_ms + 1):
                    first_seen[subject] = time_ms
            said = graph.evidence_by_author[owner]
            verdicts = {(v.subject, v.session_id, v.check): v for v in state.verifications if v.subject != owner}
            for verdict in verdicts.values():
                score = pass_score if verdict.passed else fail_score
                said.append(Evidence(verdict.subject, owner, "verification", score, verdict.time_ms))
            latest = {a.subject: a for a in state.assertions if a.subject != owner}
            for assertion in latest.values():
                score = assertion.score_milli / 1000
                said.append(Evidence(assertion.subject, owner, "assertion", score, assertion.time_ms))
            for subject, _reason, _proof in state.accusations:
                if subject != owner:
                    graph.accusers[subject].add(owner)
        return graph

    def evidence_about(self, subject: str) -> list[Evidence]:
        return [item for said in self.evidence_by_author.values() for item in said if item.subject == subject]


def connected_groups(pairs: Iterable[tuple[Node, Node]]) -> list[list[Node]]:
    """The connected groups of the graph whose edges are ``pairs`` (union-find with path halving)."""
    parent: dict[Node, Node] = {}

    def root(node: Node) -> Node:
        while parent.get(node, node) != node:
            parent[node] = parent.get(parent[node], parent[node])
            node = parent[node]
        return node

    for x, y in pairs:
        a, b = root(x), root(y)
        parent.setdefault(b, b)
        parent[a] = b
    groups: dict[Node, list[Node]] = {}
    for node in parent:
        groups.setdefault(root(node), []).append(node)
    return list(groups.values())


@dataclass
class PathResult:
    score: dict[str, float]
    hops: dict[str, int]
    preds: list[dict[str, str]]


@dataclass
class Clusters:
    """Strong-tie clusters of 2..``max_cluster_size`` identities: each member's cluster, members, isolation."""

    of: dict[str, int]
    members: dict[int, list[str]]
    isolation: dict[int, float]


class TrustModel:
    """Computes ``T(observer, ·)`` over a :class:`TrustGraph` and explains single values."""

    def __init__(self, graph: TrustGraph, params: TrustParameters | None = None) -> None:
        self.graph = graph
        self.params = params or TrustParameters()
        self._clusters: Clusters | None = None

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
        first_seen = self.graph.first_seen_ms.get(subject)
        if first_seen is None:
            return 0.0
        return min(1.0, max(0, now_ms - first_seen) / (self.params.age_maturity_days * MS_PER_DAY))

    def clusters(self) -> Clusters:
        """Strong-tie clusters of the held graph (computed once per model)."""
        if self._clusters is None:
            self._clusters = self._find_clusters()
        return self._clusters

    def _find_clusters(self) -> Clusters:
        share = self.params.strong_tie_share
        edges = self.graph.edges
        outgoing = {node: sum(row.values()) for node, row in edges.items()}

        def strong_ties() -> Iterator[tuple[str, str]]:
            for node, row in edges.items():
                floor = share * outgoing[node]
                for target in [t for t, v in row.items() if v >= floor]:
                    if edges.get(target, {}).get(node, 0.0) >= share * outgoing.get(target, 0.0) > 0.0:
                        yield node, target

        groups = connected_groups(strong_ties())
        of: dict[str, int] = {}
        members: dict[int, list[str]] = {}
        isolation: dict[int, float] = {}
        weighed = (g for g in groups if 1 < len(g) <= self.params.max_cluster_size)
        for index, group in enumerate(weighed):
            inside = set(group)
            internal = sum(v for n in group for t, v in edges.get(n, {}).items() if t in inside)
            total = sum(outgoing.get(n, 0.0) for n in group)
            members[index] = sorted(group)
            isolation[index] = internal / total if total > 0 else 0.0
            of.update(dict.fromkeys(group, index))
        return Clusters(of, members, isolation)

    def cluster_weight(self, subject: str, observer: str) -> float:
        """``1 / size`` for a member of an isolated strong-tie cluster that does not hold the observer, else 1."""
        clusters = self.clusters()
        index = clusters.of.get(subject)
        if index is None or clusters.of.get(observer) == index:
            return 1.0
        size = len(clusters.members[index])
        if clusters.isolation[index] <= self.params.isolation_threshold:
            return 1.0
        return 1.0 / size

    def misbehaviour(self, subject: str, credibility: Mapping[str, float], observer: str) -> float:
        factor = self.params.proof_penalty ** self.graph.proofs.get(subject, 0)
        for accuser in self.graph.accusers.get(subject, ()):
            factor *= 1.0 - self.params.accusation_weight * self._credibility(accuser, credibility, observer)
        return factor

    @staticmethod
    def _credibility(author: str, base: Mapping[str, float], observer: str) -> float:
        return 1.0 if author == observer else base.get(author, 0.0)

    def fade(self, time_ms: int, now_ms: int) -> float:
        """How much of a statement made at ``time_ms`` still counts: decays to ``ASSERTION_RESIDUAL``."""
        residual, tau_ms = self.params.assertion_residual, self.params.tau_assertion_days * MS_PER_DAY
        return residual + (1 - residual) * math.exp(-max(0, now_ms - time_ms) / tau_ms)

    def evidence_term(self, x: float) -> float:
        return self.params.evidence_weight * x / (1.0 + abs(x))

    def _before_evidence(self, observer: str, now_ms: int) -> tuple[PathResult, dict[str, float]]:
        """Path trust and ``B(o, ·)``, the trust before evidence: what an author's word is worth."""
        result = self.paths(observer)
        first_seen, clustered = self.graph.first_seen_ms, self.clusters().of
        maturity_ms = self.params.age_maturity_days * MS_PER_DAY
        base: dict[str, float] = {}
        for subject, path_trust in result.score.items():
            seen = first_seen.get(subject)
            if seen is None:
                base[subject] = 0.0
                continue
            value = path_trust * min(1.0, max(0, now_ms - seen) / maturity_ms)
            base[subject] = value * self.cluster_weight(subject, observer) if subject in clustered else value
        credible = {s: v for s, v in base.items() if v > 0}
        for subject in self.graph.accusers.keys() & base.keys():
            base[subject] *= self.misbehaviour(subject, credible, observer)
        proofs = self.graph.proofs
        for subject in proofs.keys() & base.keys() - self.graph.accusers.keys():
            base[subject] *= self.params.proof_penalty ** proofs[subject]
        return result, base

    def _evidence_sums(self, base: Mapping[str, float], observer: str, now_ms: int) -> dict[str, float]:
        """``X`` per subject: what credible authors signed about it, each weighted by credibility and decay."""
        sums: dict[str, float] = {}
        by_author = self.graph.evidence_by_author
        for author in (*base.keys(), observer):
            said = by_author.get(author)
            if not said:
                continue
            credibility = self._credibility(author, base, observer)
            if credibility <= 0.0:
                continue
            for item in said:
                if item.subject != observer:
                    weight = item.score * self.fade(item.time_ms, now_ms) * credibility
                    sums[item.subject] = sums.get(item.subject, 0.0) + weight
        return sums

    def trust_all(self, observer: str, now_ms: int) -> dict[str, float]:
        """``T(observer, s)`` for every identity reachable from the observer or spoken of by someone it trusts."""
        result, base = self._before_evidence(observer, now_ms)
        trust = dict(base)
        for subject, x in self._evidence_sums(base, observer, now_ms).items():
            if x == 0.0:
                continue
            combined = min(1.0, max(0.0, result.score.get(subject, 0.0) + self.evidence_term(x)))
            trust[subject] = (
                combined
                * self.age_derate(subject, now_ms)
                * self.cluster_weight(subject, observer)
                * self.misbehaviour(subject, base, observer)
            )
        trust[observer] = 1.0
        return trust

    def explain(self, observer: str, subject: str, now_ms: int) -> dict[str, Any]:
        """Every input of ``T(observer, subject)`` with its contribution, the best path, and the parameters."""
        if subject == observer:
            return {"observer": observer, "subject": subject, "trust": 1.0, "note": "an observer trusts itself"}
        result, base = self._before_evidence(observer, now_ms)
        path_trust = result.score.get(subject, 0.0)
        path = self._path(result, subject)
        edges = []
        for truster, trusted in itertools.pairwise(path):
            value = self.graph.edges.get(truster, {}).get(trusted, 0.0)
            edges.append({"from": truster, "to": trusted, "value": value, "weight": self.edge_weight(truster, value)})
        evidence: list[dict[str, Any]] = []
        for item in self.graph.evidence_about(subject):
            decay, credibility = self.fade(item.time_ms, now_ms), self._credibility(item.author, base, observer)
            evidence.append({
                "author": item.author,
                "kind": item.kind,
                "score": item.score,
                "decay": decay,
                "credibility": credibility,
                "contribution": item.score * decay * credibility,
            })  # fmt: skip
        x = sum(item["contribution"] for item in evidence)
        evidence_term = self.evidence_term(x)
        age = self.age_derate(subject, now_ms)
        first_seen = self.graph.first_seen_ms.get(subject)
        claimed = self.graph.claimed_genesis_ms.get(subject)
        clusters = self.clusters()
        index = clusters.of.get(subject)
        cluster = self.cluster_weight(subject, observer)
        misbehaviour = self.misbehaviour(subject, base, observer)
        combined = min(1.0, max(0.0, path_trust + evidence_term))
        return {
            "observer": observer,
            "subject": subject,
            "trust": combined * age * cluster * misbehaviour,
            "path_trust": path_trust,
            "path": path,
            "edges": edges,
            "hops": result.hops.get(subject, 0),
            "evidence": evidence,
            "evidence_sum": x,
            "evidence_term": evidence_term,
            "age_days": None if first_seen is None else max(0, now_ms - first_seen) / MS_PER_DAY,
            "claimed_age_days": None if claimed is None else max(0, now_ms - claimed) / MS_PER_DAY,
            "age_derate": age,
            "cluster": None
            if index is None
            else {"size": len(clusters.members[index]), "isolation": clusters.isolation[index]},
            "cluster_weight": cluster,
            "proofs": self.graph.proofs.get(subject, 0),
            "accusers": [
                {"accuser": a, "credibility": self._credibility(a, base, observer)}
                for a in sorted(self.graph.accusers.get(subject, ()))
            ],
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
    """Lines for ``omerta ledger trust PEER --explain``: each input and what it contributed."""
    if "path_trust" not in info:
        return [f"trust {info['trust']:.3f}: {info.get('note', '')}"]
    params = info["parameters"]
    lines = [
        f"trust {info['trust']:.4f} = clamp(path {info['path_trust']:.4f} + evidence {info['evidence_term']:+.4f})"
        f" * age {info['age_derate']:.3f} * cluster {info['cluster_weight']:.3f}"
        f" * misbehaviour {info['misbehaviour_factor']:.3f}"
    ]
    if info["path"]:
        lines.append(f"path: best of {info['hops']} hop(s), decay {params['transitivity_decay']} per extra hop")
        for edge in info["edges"]:
            lines.append(
                f"  {edge['from'][:12]} -> {edge['to'][:12]}  verified value {edge['value']:.1f}"
                f"  weight {edge['weight']:.4f}"
            )
    else:
        lines.append("path: no path of verified transactions from this node to the peer: 0")
    if info["evidence"]:
        lines.append(
            f"evidence: sum {info['evidence_sum']:+.4f} -> {info['evidence_term']:+.4f}"
            f" (at most ±{params['evidence_weight']})"
        )
        for item in info["evidence"]:
            lines.append(
                f"  {item['kind']:<12} by {item['author'][:12]}  score {item['score']:+.3f}"
                f" * decay {item['decay']:.3f} * credibility {item['credibility']:.3f} = {item['contribution']:+.4f}"
            )
    else:
        lines.append("evidence: no verification or trust assertion about the peer held")
    age, claimed = info["age_days"], info["claimed_age_days"]
    claim = "" if claimed is None else f" (its own identity block claims {claimed:.1f} d; not used)"
    lines.append(
        "age: nobody else has recorded this identity: derate 0" + claim
        if age is None
        else f"age: first recorded by another identity {age:.1f} d ago, of {params['age_maturity_days']:.0f} d"
        f" to maturity: {info['age_derate']:.3f}" + claim
    )
    cluster = info["cluster"]
    lines.append(
        "cluster: in no strong-tie cluster: 1"
        if cluster is None
        else f"cluster: {cluster['size']} identities, {cluster['isolation']:.0%} of their volume internal:"
        f" {info['cluster_weight']:.3f}"
    )
    lines.append(f"misbehaviour: {info['proofs']} verified proof(s) (each * {params['proof_penalty']})")
    for accuser in info["accusers"]:
        lines.append(f"  accused by {accuser['accuser'][:12]} (credibility {accuser['credibility']:.3f})")
    return lines
