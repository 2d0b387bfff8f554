"""Fixtures for the lab tests: a NAT matrix (lab, relays, two hosts per kind) removed even on failure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from omerta_netlab import Lab
from omerta_netlab.matrix import NatMatrix


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatMatrix]:
    """One lab for a whole module: relays keep running, each test starts its own client nodes."""
    with Lab(prefix="onlr") as lab:
        built = NatMatrix(lab, tmp_path_factory.mktemp("matrix"))
        built.start_relays()
        yield built


@pytest.fixture
def fresh_matrix(tmp_path: Path) -> Iterator[NatMatrix]:
    """A lab of its own, for tests that kill relays or flush routers."""
    with Lab(prefix="onlr") as lab:
        built = NatMatrix(lab, tmp_path)
        built.start_relays()
        yield built
