"""The design card's own command works: ``omerta node --plugins kvm,gossip`` pulls in the udp transport.

And when the udp distribution is not installed, the same command is one line naming the unmet need.
"""

from __future__ import annotations

import os
import signal
import site
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from omerta_core.testing import NodeProcess

STOP_WITHIN_S = 2.0


def stops_on_sigterm_within_budget(node: NodeProcess) -> None:
    assert node.process is not None
    started = time.monotonic()
    node.process.send_signal(signal.SIGTERM)
    assert node.process.wait(timeout=10) == 0
    assert time.monotonic() - started < STOP_WITHIN_S


@pytest.mark.slow
def test_card_command_starts_with_udp_pulled_in_answers_and_stops(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "state")
    node.spawn("plugins.udp.port=0", args=["--plugins", "kvm,gossip"]).wait_ready()
    try:
        status = node.status()
        assert set(status["plugins"]) == {"kvm", "gossip", "udp"}
        assert status["pulled_in"] == {"udp": "gossip"}
        assert set(status["services"]) == {"hypervisor", "transport", "discovery"}
        assert "udp loaded: needed by gossip" in node.log_tail(20_000)
        stops_on_sigterm_within_budget(node)
    finally:
        node.stop()


@pytest.mark.slow
def test_plugins_from_the_environment_are_completed_the_same_way(tmp_path: Path) -> None:
    def with_plugins_env(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, **{**kwargs, "env": {**kwargs["env"], "OMERTA_PLUGINS": "gossip"}})

    node = NodeProcess(tmp_path / "state", launcher=with_plugins_env)
    node.spawn("plugins.udp.port=0").wait_ready()
    try:
        assert set(node.status()["plugins"]) == {"gossip", "udp"}
        stops_on_sigterm_within_budget(node)
    finally:
        node.stop()


def site_without(root: Path, distribution: str) -> Path:
    """A copy of this environment's site-packages (as symlinks) without one distribution's files."""
    target = root / "site"
    target.mkdir()
    module = distribution.replace("-", "_")
    for directory in site.getsitepackages():
        for entry in Path(directory).iterdir():
            if module in entry.name or (target / entry.name).exists():
                continue
            (target / entry.name).symlink_to(entry)
    return target


@pytest.mark.slow
def test_without_the_udp_distribution_the_card_command_is_one_line(tmp_path: Path) -> None:
    packages = site_without(tmp_path, "omerta-transport-udp")
    launcher = f"import site; site.addsitedir({str(packages)!r}); from omerta_core.cli import run; run()"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMERTA_", "PYTHONPATH"))}
    result = subprocess.run(
        [sys.executable, "-S", "-c", launcher, "node", "--plugins", "kvm,gossip", "--state-dir", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "Error: gossip needs a transport, and no installed plugin provides one; try `pip install omerta-transport-udp`"
    ]
