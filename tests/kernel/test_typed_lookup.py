"""``node.service(Transport)`` is typed: mypy checks every call made through it (PEP 561, ``py.typed``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SNIPPET = """
from omerta_core.interfaces.discovery import Discovery
from omerta_core.interfaces.transport import Transport
from omerta_core.node import NodeContext


async def use(node: NodeContext) -> None:
    await node.service(Transport).send(node.peer_id, "chat", b"hi")
    discovery = node.find(Discovery)
    if discovery is not None:
        discovery.peers()
    {extra}
"""


def mypy(tmp_path: Path, extra: str) -> subprocess.CompletedProcess[str]:
    source = tmp_path / "snippet.py"
    source.write_text(textwrap.dedent(SNIPPET).replace("{extra}", extra))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(source),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        timeout=300,
    )


@pytest.mark.slow
def test_correct_calls_type_check(tmp_path: Path) -> None:
    result = mypy(tmp_path, "")
    assert result.returncode == 0, result.stdout


@pytest.mark.slow
def test_a_method_transport_does_not_have_fails_type_checking(tmp_path: Path) -> None:
    result = mypy(tmp_path, "node.service(Transport).sendd(node.peer_id, 'chat', b'hi')")
    assert result.returncode == 1
    assert '"Transport" has no attribute "sendd"' in result.stdout


@pytest.mark.slow
def test_an_optional_service_must_be_checked_for_none(tmp_path: Path) -> None:
    result = mypy(tmp_path, "node.find(Discovery).peers()")
    assert result.returncode == 1
    assert 'Item "None" of "Discovery | None" has no attribute "peers"' in result.stdout
