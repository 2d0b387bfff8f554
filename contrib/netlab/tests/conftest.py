"""Fixtures: a fresh lab per test (removed even when the test fails) and reflectors on its internet."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from omerta_netlab import Lab
from omerta_netlab.reflector import Reflector


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(prefix="onlt") as built:
        yield built


@pytest.fixture
def reflectors(lab: Lab) -> Iterator[list[Reflector]]:
    """Three reflectors on the internet: A:3478, A:3479 (same address, other port) and B:3478."""
    first = lab.add_public_host("refl_a")
    second = lab.add_public_host("refl_b")
    started = [lab.reflector(first, 3478), lab.reflector(first, 3479), lab.reflector(second, 3478)]
    yield started
    for reflector in started:
        reflector.close()
