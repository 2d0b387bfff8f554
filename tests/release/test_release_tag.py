"""``scripts/release-tag``: the release workflow's check that tag, built version and CHANGELOG agree."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .distributions import ROOT

SCRIPT = ROOT / "scripts" / "release-tag"


def release_tag(*args: str, root: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root), *args], capture_output=True, text=True, check=False
    )


@pytest.fixture
def macos_tree(tmp_path: Path) -> Path:
    """A tree holding only the macos plugin's project files, its 0.1.0 entry dated."""
    project = tmp_path / "tree" / "plugins" / "vm_macos"
    shutil.copytree(ROOT / "plugins" / "vm_macos", project, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    changelog = project / "CHANGELOG.md"
    changelog.write_text(changelog.read_text().replace("## 0.1.0 — unreleased", "## 0.1.0 — 2026-12-01", 1))
    return tmp_path / "tree"


@pytest.fixture
def macos_dist(built: Path, tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    dist.mkdir()
    for path in built.glob("omerta_vm_macos-*"):
        shutil.copy(path, dist)
    return dist


@pytest.mark.parametrize(
    ("tag", "directory"),
    [
        ("omerta-node-v1.0.0", "."),
        ("omerta-vm-kvm-v0.1.0", "plugins/vm_kvm"),
        ("omerta-netlab-v0.1.0", "contrib/netlab"),
    ],
)
def test_plan_finds_the_tagged_distribution(tag: str, directory: str) -> None:
    result = release_tag("plan", tag)
    assert result.returncode == 0, result.stderr
    distribution, version = tag.rsplit("-v", 1)
    assert result.stdout.splitlines() == [
        f"distribution={distribution}",
        f"version={version}",
        f"directory={directory}",
    ]


@pytest.mark.parametrize(
    ("tag", "says"),
    [
        ("omerta-node-1.0.0", "is not <distribution>-v<version>"),
        ("omerta-nosuch-v1.0.0", "no distribution named 'omerta-nosuch'"),
        ("omerta-node-vnext", "'next' is not a version"),
        ("omerta-node-v01.0.0", "write the version as 1.0.0"),
    ],
)
def test_plan_refuses_a_bad_tag_in_one_line(tag: str, says: str) -> None:
    result = release_tag("plan", tag)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("release-tag: ") and says in result.stderr
    assert result.stderr.count("\n") == 1


def test_verify_passes_when_tag_build_and_changelog_agree(macos_tree: Path, macos_dist: Path) -> None:
    result = release_tag("verify", "omerta-vm-macos-v0.1.0", str(macos_dist), root=macos_tree)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "omerta-vm-macos 0.1.0: tag, build and CHANGELOG agree\n"


def test_verify_refuses_a_tag_that_is_not_the_built_version(macos_tree: Path, macos_dist: Path) -> None:
    result = release_tag("verify", "omerta-vm-macos-v0.1.1", str(macos_dist), root=macos_tree)
    assert result.returncode == 1
    assert "tag says 0.1.1, but omerta_vm_macos-0.1.0" in result.stderr


def test_verify_refuses_an_undated_or_missing_changelog_entry(macos_tree: Path, macos_dist: Path) -> None:
    changelog = macos_tree / "plugins" / "vm_macos" / "CHANGELOG.md"
    changelog.write_text(changelog.read_text().replace("## 0.1.0 — 2026-12-01", "## 0.1.0 — unreleased"))
    result = release_tag("verify", "omerta-vm-macos-v0.1.0", str(macos_dist), root=macos_tree)
    assert result.returncode == 1
    assert "date the 0.1.0 entry" in result.stderr
    changelog.write_text(changelog.read_text().replace("## 0.1.0 — unreleased", "## 0.0.9 — 2026-11-01"))
    result = release_tag("verify", "omerta-vm-macos-v0.1.0", str(macos_dist), root=macos_tree)
    assert "has no entry for 0.1.0" in result.stderr


def test_verify_refuses_another_distributions_files(macos_tree: Path, macos_dist: Path, built: Path) -> None:
    shutil.copy(next(built.glob("omerta_node-*.whl")), macos_dist)
    result = release_tag("verify", "omerta-vm-macos-v0.1.0", str(macos_dist), root=macos_tree)
    assert result.returncode == 1
    assert "which is not omerta-vm-macos" in result.stderr
