"""Shared fixtures of the integration tests: the demo's NAT lab (``scripts/demo_lab.py``) with its eight nodes
started, acquainted and funded, one per test module.

A module that uses ``rental_lab`` may set ``LAB_SETTINGS`` (per node, per section, over the demo's settings) to
change the nodes' configuration, e.g. shorter rental timers. The lab and everything in it is removed after the
module, also on failure, and the fixture then checks that none of its namespaces remain; the nodes' logs are
copied to a pytest temporary directory first.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "demo_lab.py"


@functools.cache
def load_demo() -> ModuleType:
    """``scripts/demo_lab.py`` as a module (it is a script, not in a package)."""
    spec = importlib.util.spec_from_file_location("demo_lab", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo_lab"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@dataclass
class RentalLabRun:
    """The demo module, its scene after setup, the timeline and every line it printed."""

    demo: ModuleType
    scene: Any
    timeline: Any
    said: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def rental_lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RentalLabRun]:
    demo = load_demo()
    cache = os.environ.get("OMERTA_KVM_TEST_CACHE")
    images = demo.build_test_guest(Path(cache) if cache else tmp_path_factory.mktemp("guest")).parent
    said: list[str] = []

    def say(line: str) -> None:
        said.append(line)
        print(line)

    timeline = demo.Timeline(say=say)
    # not under pytest's base directory: another pytest run resets its mode to 0700, locking nobody out
    workdir = Path(tempfile.mkdtemp(prefix="omerta-rentallab-"))
    logs = tmp_path_factory.mktemp("rentallab-logs")
    settings = getattr(request.module, "LAB_SETTINGS", None)
    try:
        with demo.RentalLab(workdir, images, prefix="omrt", settings=settings) as scene:
            demo.setup(scene, timeline)
            yield RentalLabRun(demo, scene, timeline, said)
        assert scene.remains() == [], "the lab left namespaces behind"
    finally:
        for log in workdir.glob("*.log"):
            shutil.copy(log, logs)
        shutil.rmtree(workdir)
