"""The distributions this tree releases, how they are built, and what their built files declare.

Touches the source tree (read only) and the output directory it is given; builds with ``python -m build``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from importlib.metadata import Distribution, PathDistribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
#: Every directory holding a released distribution: the kernel, each plugin, the NAT lab.
PROJECT_DIRS: list[Path] = [
    ROOT,
    *sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml")),
    ROOT / "contrib" / "netlab",
]
TEMPLATE = ROOT / "contrib" / "plugin-template"
BUILD_TIMEOUT_S = 600


def project_name(project_dir: Path) -> str:
    return str(tomllib.loads((project_dir / "pyproject.toml").read_text())["project"]["name"])


def build(project_dir: Path, out: Path, *, wheel_only: bool = False) -> None:
    """``python -m build``: an sdist, then a wheel built from that sdist (or only a wheel), into ``out``."""
    only = ["--wheel"] if wheel_only else []
    subprocess.run(
        [sys.executable, "-m", "build", "--installer", "uv", *only, "--outdir", str(out), str(project_dir)],
        check=True,
        capture_output=True,
        timeout=BUILD_TIMEOUT_S,
    )


@dataclass(frozen=True)
class BuiltWheel:
    """One built wheel and the metadata inside it."""

    path: Path

    @property
    def metadata(self) -> Distribution:
        archive = zipfile.Path(self.path)
        info = next(p for p in archive.iterdir() if p.name.endswith(".dist-info"))
        return PathDistribution(info)

    @property
    def name(self) -> str:
        return canonicalize_name(self.metadata.metadata["Name"])

    @property
    def version(self) -> str:
        return self.metadata.version

    def requirements(self) -> list[Requirement]:
        """Requirements that hold without extras (what ``pip install NAME`` brings)."""
        found = [Requirement(line) for line in self.metadata.requires or []]
        return [r for r in found if r.marker is None or r.marker.evaluate({"extra": ""})]

    def plugin_names(self) -> list[str]:
        return [ep.name for ep in self.metadata.entry_points if ep.group == "omerta"]

    def top_level_packages(self) -> set[str]:
        with zipfile.ZipFile(self.path) as archive:
            return {n.split("/")[0] for n in archive.namelist() if "/" in n and ".dist-info/" not in n}


def wheels_in(directory: Path) -> dict[str, BuiltWheel]:
    """Every wheel in ``directory``, by canonical distribution name."""
    return {w.name: w for w in (BuiltWheel(p) for p in sorted(directory.glob("*.whl")))}


def changelog_versions(project_dir: Path) -> dict[str, str]:
    """``{version: status}`` from the CHANGELOG's ``## VERSION — STATUS`` headings."""
    text = (project_dir / "CHANGELOG.md").read_text()
    return {m[1]: m[2].strip() for m in re.finditer(r"^## (\S+)(?: — (.*))?$", text, re.MULTILINE)}
