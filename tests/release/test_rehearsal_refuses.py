"""The rehearsal fails when a wheel depends on the kernel's former name or on a distribution not uploaded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import render_template_plugin
from .distributions import build
from .package_index import PackageIndex, RehearsalError, StrangerVenv


@pytest.fixture
def index_with_kernel(built: Path, tmp_path: Path) -> Iterator[PackageIndex]:
    with PackageIndex(tmp_path / "packages", tmp_path / "pypi-server.log") as started:
        started.upload(sorted(built.glob("omerta_node-*")))
        yield started


def upload_plugin(index: PackageIndex, name: str, dependencies: list[str], tmp_path: Path) -> None:
    out = tmp_path / f"dist-{name}"
    build(render_template_plugin(name, tmp_path / "rendered", dependencies), out, wheel_only=True)
    index.upload(sorted(out.iterdir()))


def test_a_wheel_on_the_former_kernel_name_fails(index_with_kernel: PackageIndex, tmp_path: Path) -> None:
    upload_plugin(index_with_kernel, "oldname", ["omerta>=0.1"], tmp_path)
    venv = StrangerVenv(tmp_path / "venv", index_with_kernel)
    with pytest.raises(RehearsalError, match=r"omerta_oldname-0\.1\.0-py3-none-any\.whl depends on omerta>=0\.1: "):
        venv.install("omerta-oldname")
    assert not (venv.bin / "omerta").exists()


def test_a_wheel_on_a_distribution_not_uploaded_fails(index_with_kernel: PackageIndex, tmp_path: Path) -> None:
    upload_plugin(index_with_kernel, "orphan", ["omerta-node>=1,<2", "omerta-transport-udp>=0.1"], tmp_path)
    venv = StrangerVenv(tmp_path / "venv", index_with_kernel)
    with pytest.raises(RehearsalError, match=r"depends on omerta-transport-udp>=0\.1, which was not uploaded"):
        venv.install("omerta-orphan")
    assert not (venv.bin / "omerta").exists()
