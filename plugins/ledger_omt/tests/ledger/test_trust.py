from __future__ import annotations

import math

import pytest
from omerta_ledger_omt.ledger.trust import MS_PER_DAY, TrustGraph, TrustModel, TrustParameters, explanation_text

NOW = 1000 * MS_PER_DAY
OLD = NOW - 365 * MS_PER_DAY


def value_for(weight: float, scale: float = 1000.0) -> float:
    """The verified value that gives a direct edge ``weight``."""
    return -scale * math.log(1 - weight)


def graph(edges: dict[tuple[str, str], float], ages: dict[str, int] | None = None) -> TrustGraph:
    g = TrustGraph()
    for (a, b), weight in edges.items():
        g.add_value(a, b, value_for(weight))
    for node in {n for pair in edges for n in pair}:
        g.first_seen_ms[node] = OLD
    g.first_seen_ms.update(ages or {})
    return g


def test_paths_take_the_weakest_link_and_decay_per_hop() -> None:
    # alice -> bob 0.8 -> dave 0.7 ; alice -> carol 0.6 -> dave 0.9
    g = graph({("alice", "bob"): 0.8, ("bob", "dave"): 0.7, ("alice", "carol"): 0.6, ("carol", "dave"): 0.9})
    trust = TrustModel(g).trust_all("alice", NOW)
    assert trust["bob"] == pytest.approx(0.8)
    assert trust["dave"] == pytest.approx(0.7 * 0.5)  # best path via bob: min(0.8, 0.7) x decay
    assert trust["alice"] == 1.0


def test_trust_is_local_to_the_observer() -> None:
    g = graph({("alice", "bob"): 0.8, ("carol", "dave"): 0.9})
    model = TrustModel(g)
    assert model.trust_all("alice", NOW).get("dave", 0.0) == 0.0
    assert model.trust_all("carol", NOW)["dave"] == pytest.approx(0.9)


def test_paths_longer_than_the_limit_count_nothing() -> None:
    chain = {(f"n{i}", f"n{i + 1}"): 0.9 for i in range(6)}
    trust = TrustModel(graph(chain), TrustParameters(max_path_length=4)).trust_all("n0", NOW)
    assert trust["n4"] == pytest.approx(0.9 * 0.5**3)
    assert "n5" not in trust


def test_young_identities_are_derated_not_credited() -> None:
    g = graph({("alice", "bob"): 0.8, ("alice", "newbie"): 0.8}, ages={"newbie": NOW - 30 * MS_PER_DAY})
    trust = TrustModel(g).trust_all("alice", NOW)
    assert trust["newbie"] == pytest.approx(0.8 * 30 / 90)
    g.first_seen_ms.pop("newbie")
    assert TrustModel(g).trust_all("alice", NOW)["newbie"] == 0.0


def test_proofs_and_accusations_lower_trust_and_the_offenders_word() -> None:
    g = graph({("alice", "bob"): 0.8, ("bob", "carol"): 0.8, ("alice", "eve"): 0.5})
    model = TrustModel(g)
    assert model.trust_all("alice", NOW)["carol"] == pytest.approx(0.4)
    g.proofs["bob"] = 1
    trust = model.trust_all("alice", NOW)
    assert trust["bob"] == pytest.approx(0.08)
    assert trust["carol"] == pytest.approx(0.08 * 0.5)  # bob's vouching is discounted too
    g.accusers["carol"].add("eve")
    assert model.trust_all("alice", NOW)["carol"] == pytest.approx(0.04 * (1 - 0.5 * 0.5))


def test_explanation_shows_how_the_number_was_reached() -> None:
    g = graph({("alice", "bob"): 0.8, ("bob", "dave"): 0.7})
    info = TrustModel(g).explain("alice", "dave", NOW)
    assert info["path"] == ["alice", "bob", "dave"]
    assert info["trust"] == pytest.approx(0.35)
    assert [round(e["weight"], 6) for e in info["edges"]] == [0.8, 0.7]
    text = "\n".join(explanation_text(info))
    assert "2 hop(s)" in text and "age" in text
    none = TrustModel(g).explain("dave", "alice", NOW)
    assert none["trust"] == 0.0 and "no path" in "\n".join(explanation_text(none))
