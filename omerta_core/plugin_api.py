"""Which kernel a plugin fits: the plugin API version, and the check made before a plugin is imported.

The plugin API is what a plugin touches: the hooks, the records, the interfaces, ``NodeContext``
and the errors. Its version is the major version of the kernel distribution ``omerta-node``: an
incompatible change makes a new major release, an addition a minor one. A plugin says which
kernels it fits by its dependency on ``omerta-node`` (``omerta-node>=1,<2`` fits plugin API 1);
that requirement, read from the plugin's installed metadata, is the declaration checked here, so a
plugin built for another API is refused before any of its code runs.
Touches only installed distributions' metadata.
"""

from __future__ import annotations

from importlib.metadata import Distribution

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from omerta_core import PLUGIN_API_VERSION, __version__
from omerta_core.errors import IncompatiblePluginError

#: The kernel's distribution name, which plugins depend on.
KERNEL_DISTRIBUTION = "omerta-node"
#: The kernel's name before 1.0; on the public index it belongs to an unrelated project.
FORMER_KERNEL_DISTRIBUTION = "omerta"


def fitting_range(api: int = PLUGIN_API_VERSION) -> str:
    """The requirement a plugin built for plugin API ``api`` declares."""
    return f"{KERNEL_DISTRIBUTION}>={api},<{api + 1}"


def kernel_requirements(dist: Distribution) -> list[Requirement]:
    """The distribution's unconditional requirements on the kernel, under its current or former name."""
    found = []
    for line in dist.requires or []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        if canonicalize_name(requirement.name) in (KERNEL_DISTRIBUTION, FORMER_KERNEL_DISTRIBUTION):
            found.append(requirement)
    return found


def require_fits(plugin: str, dist: Distribution | None, kernel_version: str = __version__) -> None:
    """Raise :class:`IncompatiblePluginError` unless ``dist`` declares a kernel range holding this kernel."""
    if dist is None:
        return
    label = f"plugin {plugin!r} ({dist.metadata['Name']} {dist.version})"
    api = Version(kernel_version).major
    fitting = fitting_range(api)
    this = f"this is {KERNEL_DISTRIBUTION} {kernel_version} (plugin API {api})"
    requirements = kernel_requirements(dist)
    if not requirements:
        raise IncompatiblePluginError(
            f"{label} does not say which kernel it fits; {this}: "
            f"its distribution must depend on {KERNEL_DISTRIBUTION} (e.g. {fitting})"
        )
    for requirement in requirements:
        if canonicalize_name(requirement.name) == FORMER_KERNEL_DISTRIBUTION:
            raise IncompatiblePluginError(
                f"{label} was built for the kernel's former name {FORMER_KERNEL_DISTRIBUTION!r} (before 1.0); "
                f"{this}: install a release of it that depends on {fitting}"
            )
        if not requirement.specifier.contains(kernel_version, prereleases=True):
            raise IncompatiblePluginError(
                f"{label} fits {KERNEL_DISTRIBUTION}{requirement.specifier}; {this}: install a release of "
                f"{dist.metadata['Name']} that depends on {fitting}, or {KERNEL_DISTRIBUTION}"
                f"{requirement.specifier}"
            )
