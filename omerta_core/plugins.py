"""Finding, selecting and loading plugins from the ``omerta`` entry-point group.

Built-in plugins and third-party ones take the same path: an entry point named
by its short name (``udp``, ``kvm``, ...) that points at a module or object
implementing hooks from :mod:`omerta_core.hookspecs`.
Touches only installed distributions' metadata and the modules it imports.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from omerta_core import hookspecs
from omerta_core.errors import PluginLoadError, PluginUnavailableError, UnknownPluginError
from omerta_core.records import RECORD_KINDS, BackendRecord

ENTRY_POINT_GROUP = "omerta"

#: Registration hook for each record kind.
REGISTRATION_HOOKS: dict[str, str] = {
    "transport": "omerta_transports",
    "nat_traversal": "omerta_nat_traversals",
    "discovery": "omerta_discoveries",
    "ledger": "omerta_ledgers",
    "hypervisor": "omerta_hypervisors",
}


@dataclass(frozen=True)
class InstalledPlugin:
    """An entry point in the ``omerta`` group, before it is imported."""

    name: str
    distribution: str
    version: str
    entry_point: EntryPoint


@dataclass(frozen=True)
class PluginReport:
    """What ``omerta plugins`` shows of one plugin."""

    name: str
    distribution: str
    version: str
    hooks: list[str]
    backends: list[str]
    usable: bool
    reason: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "hooks": self.hooks,
            "backends": self.backends,
            "usable": self.usable,
            "reason": self.reason,
        }


def installed_plugins() -> dict[str, InstalledPlugin]:
    """Every plugin installed in this environment, by short name."""
    found: dict[str, InstalledPlugin] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        found[ep.name] = InstalledPlugin(
            name=ep.name,
            distribution=dist.metadata["Name"] if dist else "?",
            version=dist.version if dist else "?",
            entry_point=ep,
        )
    return dict(sorted(found.items()))


def install_hint(name: str) -> str:
    return f"pip install omerta-{name}"


class PluginHost:
    """A pluggy manager holding the selected plugins, and what they registered."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self.loaded: dict[str, InstalledPlugin] = {}
        self._records: dict[str, dict[str, list[BackendRecord]]] = {}

    @property
    def hook(self) -> Any:
        return self.manager.hook

    @classmethod
    def load(cls, names: list[str] | None = None) -> PluginHost:
        """Load exactly ``names`` (every installed plugin when empty or ``None``)."""
        available = installed_plugins()
        wanted = list(dict.fromkeys(names)) if names else list(available)
        for name in wanted:
            if name not in available:
                known = ", ".join(available) or "none"
                raise UnknownPluginError(
                    f"unknown plugin {name!r}: nothing installed registers it "
                    f"(installed: {known}); try `{install_hint(name)}`"
                )
        host = cls()
        for name in wanted:
            host.register(available[name])
        return host

    def register(self, plugin: InstalledPlugin) -> None:
        try:
            obj = plugin.entry_point.load()
        except Exception as exc:  # an import error in a plugin must not look like ours
            raise PluginLoadError(f"plugin {plugin.name!r} failed to load: {exc}") from exc
        self.manager.register(obj, name=plugin.name)
        self.loaded[plugin.name] = plugin

    def hooks_of(self, name: str) -> list[str]:
        plugin = self.manager.get_plugin(name)
        return sorted(caller.name for caller in self.manager.get_hookcallers(plugin) or [])

    def call_one(self, name: str, hook_name: str, **kwargs: Any) -> Any:
        """Call one plugin's implementation of a hook, or return ``None`` if it has none."""
        plugin = self.manager.get_plugin(name)
        impl = getattr(plugin, hook_name, None)
        if impl is None or hook_name not in self.hooks_of(name):
            return None
        return impl(**kwargs)

    def records_of(self, name: str) -> dict[str, list[BackendRecord]]:
        """The backend records one plugin registers, by kind (asked once, then remembered)."""
        if name not in self._records:
            self._records[name] = self._collect_records(name)
        return self._records[name]

    def _collect_records(self, name: str) -> dict[str, list[BackendRecord]]:
        records: dict[str, list[BackendRecord]] = {}
        for kind, hook_name in REGISTRATION_HOOKS.items():
            got = self.call_one(name, hook_name) or []
            expected = RECORD_KINDS[kind]
            for record in got:
                if not isinstance(record, expected):
                    raise PluginLoadError(
                        f"plugin {name!r}: {hook_name} returned {type(record).__name__}, expected {expected.__name__}"
                    )
            if got:
                records[kind] = list(got)
        return records

    def why_unusable(self, name: str, platform: str = sys.platform) -> str | None:
        """Why none of a plugin's backends can run here; ``None`` when it can run."""
        backends = [r for rs in self.records_of(name).values() for r in rs]
        reasons = [r.why_unusable(platform) for r in backends]
        if backends and all(reasons):
            return "; ".join(str(r) for r in reasons)
        return None

    def require_usable(self, names: list[str]) -> None:
        for name in names:
            reason = self.why_unusable(name)
            if reason:
                raise PluginUnavailableError(f"plugin {name!r} cannot run here: {reason}")

    def config_defaults(self) -> dict[str, dict[str, Any]]:
        return {name: defaults for name in self.loaded if (defaults := self.call_one(name, "omerta_config_defaults"))}

    def report(self, name: str) -> PluginReport:
        plugin = self.loaded[name]
        records = self.records_of(name)
        reason = self.why_unusable(name)
        return PluginReport(
            name=name,
            distribution=plugin.distribution,
            version=plugin.version,
            hooks=self.hooks_of(name),
            backends=[f"{kind}:{r.name}" for kind, rs in records.items() for r in rs],
            usable=reason is None,
            reason=reason,
        )
