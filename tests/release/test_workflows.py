"""GitHub workflows validate against the vendored schema; release.yml does what docs/releasing.md says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from .distributions import ROOT

SCHEMA = ROOT / ".github" / "schemas" / "github-workflow.json"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
RELEASE = ROOT / ".github" / "workflows" / "release.yml"


def check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    checker = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run(
        [str(checker), "--schemafile", str(SCHEMA), *map(str, files)], capture_output=True, text=True, check=False
    )


def test_every_workflow_validates() -> None:
    assert RELEASE in WORKFLOWS
    result = check_jsonschema(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(RELEASE.read_text().replace("runs-on: ubuntu-latest", "run-on: ubuntu-latest", 1))
    result = check_jsonschema(broken)
    assert result.returncode == 1
    assert "run-on" in result.stdout + result.stderr


def steps_running(job: dict[str, Any]) -> list[str]:
    return [step.get("run") or step["uses"] for step in job["steps"]]


def test_release_builds_the_tagged_distribution_checks_it_and_publishes_by_trusted_publishing() -> None:
    workflow = yaml.safe_load(RELEASE.read_text())
    assert workflow[True]["push"] == {"tags": ["*-v[0-9]*"]}  # YAML 1.1 reads the key "on" as true
    build = steps_running(workflow["jobs"]["build"])
    assert any(s.startswith("scripts/release-tag plan ") for s in build)
    assert any(s.startswith("python -m build ") and "steps.plan.outputs.directory" in s for s in build)
    assert any(s.startswith("scripts/release-tag verify ") for s in build)
    assert "python -m twine check --strict dist/*" in build
    publish = workflow["jobs"]["publish"]
    assert publish["needs"] == "build"
    assert publish["permissions"] == {"id-token": "write"}
    assert steps_running(publish)[-1] == "pypa/gh-action-pypi-publish@release/v1"
    assert "password" not in RELEASE.read_text()
