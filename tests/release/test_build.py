"""Every distribution builds (sdist and wheel), passes ``twine check --strict``, and declares exactly what it needs."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from omerta_core.plugin_api import FORMER_KERNEL_DISTRIBUTION, KERNEL_DISTRIBUTION, fitting_range
from omerta_core.plugins import PluginHost

from .distributions import PROJECT_DIRS, BuiltWheel, changelog_versions, project_name, wheels_in


def run_time_needs(wheel: BuiltWheel) -> set[str]:
    """Distributions the wheel's plugins need at run time without importing them.

    A backend's record names each service kind it needs and the distribution to install for it
    (``Need(Transport, install="omerta-transport-udp")``); plugins meet through kernel services, not imports.
    """
    names = wheel.plugin_names()
    if not names:
        return set()
    host = PluginHost.load(names, complete=False)
    needs = [need for name in names for record in host.records_of(name) for need in record.required()]
    return {canonicalize_name(need.install) for need in needs if need.install}


def test_every_distribution_has_an_sdist_and_a_wheel(built: Path) -> None:
    for project_dir in PROJECT_DIRS:
        stem = canonicalize_name(project_name(project_dir)).replace("-", "_")
        assert len(list(built.glob(f"{stem}-*.tar.gz"))) == 1, project_dir
        assert len(list(built.glob(f"{stem}-*-py3-none-any.whl"))) == 1, project_dir


def test_twine_check_strict_passes(built: Path) -> None:
    files = sorted(str(p) for p in built.iterdir())
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *files], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == len(files)


def test_each_version_has_a_changelog_entry(built: Path) -> None:
    wheels = wheels_in(built)
    for project_dir in PROJECT_DIRS:
        wheel = wheels[canonicalize_name(project_name(project_dir))]
        assert wheel.version in changelog_versions(project_dir), f"{project_dir}/CHANGELOG.md lacks {wheel.version}"


def test_plugins_declare_this_kernels_plugin_api(built: Path) -> None:
    for wheel in wheels_in(built).values():
        if wheel.name == KERNEL_DISTRIBUTION:
            continue
        kernel = [r for r in wheel.requirements() if canonicalize_name(r.name) == KERNEL_DISTRIBUTION]
        assert kernel == [Requirement(fitting_range())], wheel.name


def test_no_wheel_depends_on_the_former_kernel_name_or_on_an_omerta_name_not_built_here(built: Path) -> None:
    wheels = wheels_in(built)
    for wheel in wheels.values():
        for requirement in wheel.requirements():
            name = canonicalize_name(requirement.name)
            assert name != FORMER_KERNEL_DISTRIBUTION, wheel.name
            if name.startswith("omerta"):
                assert name in wheels, f"{wheel.name} depends on {name}, which this tree does not build"
                assert requirement.specifier.contains(wheels[name].version), f"{wheel.name}: {requirement}"


def imported_top_levels(wheel: BuiltWheel) -> set[str]:
    """Top-level modules the wheel's code imports absolutely, standard library left out."""
    found: set[str] = set()
    with zipfile.ZipFile(wheel.path) as archive:
        for name in archive.namelist():
            if not name.endswith(".py"):
                continue
            for node in ast.walk(ast.parse(archive.read(name))):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"__future__"} - wheel.top_level_packages()


def test_each_wheel_requires_exactly_what_it_imports_and_needs(built: Path) -> None:
    wheels = wheels_in(built)
    providers: dict[str, set[str]] = {
        module: {canonicalize_name(d) for d in dists} for module, dists in packages_distributions().items()
    }
    for wheel in wheels.values():
        for package in wheel.top_level_packages():
            providers[package] = {wheel.name}
    for wheel in wheels.values():
        imported: set[str] = set()
        for module in imported_top_levels(wheel):
            assert module in providers, f"{wheel.name} imports {module}, which no installed distribution provides"
            imported |= providers[module]
        declared = {canonicalize_name(r.name) for r in wheel.requirements()}
        assert declared == imported | run_time_needs(wheel), wheel.name
