"""Finding, selecting and loading plugins from the ``omerta`` entry-point group.

Built-in plugins and third-party ones take the same path: an entry point named
by its short name (``udp``, ``kvm``, ...) that points at a module or object
implementing hooks from :mod:`omerta_core.hookspecs`. A selection is completed
with the plugins that provide what the selected ones need (see
:meth:`PluginHost.load`). Touches only installed distributions' metadata and the
modules it imports.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from omerta_core import hookspecs, plugin_api
from omerta_core.errors import PluginLoadError, PluginUnavailableError, UnknownPluginError, UnmetNeedError
from omerta_core.records import Need, ServiceRecord, article, kind_name

ENTRY_POINT_GROUP = "omerta"


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
    provides: list[str]
    needs: list[str]
    uses: list[str]
    usable: bool
    reason: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "hooks": self.hooks,
            "backends": self.backends,
            "provides": self.provides,
            "needs": self.needs,
            "uses": self.uses,
            "usable": self.usable,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class PulledIn:
    """A plugin the kernel loaded because a selected one needed what it provides."""

    plugin: str
    kind: str
    needed_by: str


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


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    return manager


@dataclass
class PluginHost:
    """A pluggy manager holding the selected plugins, and what they registered."""

    manager: pluggy.PluginManager = field(default_factory=_new_manager)
    loaded: dict[str, InstalledPlugin] = field(default_factory=dict)
    pulled_in: list[PulledIn] = field(default_factory=list)
    _records: dict[str, list[ServiceRecord]] = field(default_factory=dict)

    @property
    def hook(self) -> Any:
        return self.manager.hook

    @classmethod
    def load(
        cls, names: list[str] | None = None, defaults: dict[str, str] | None = None, *, complete: bool = True
    ) -> PluginHost:
        """Load exactly ``names`` plus, with ``complete``, what they need (every installed plugin when empty).

        For each need of a usable backend that no loaded plugin meets, the provider
        is, in order: the plugin ``defaults`` names for that kind; the installed
        backend of that kind marked ``default``; the only installed provider. An
        unmet need raises :class:`UnmetNeedError` naming it and what to install.
        """
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
        if names and complete:
            host.fill_needs(available, defaults or {})
        return host

    def register(self, plugin: InstalledPlugin) -> None:
        plugin_api.require_fits(plugin.name, plugin.entry_point.dist)
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

    def records_of(self, name: str) -> list[ServiceRecord]:
        """The backend records one plugin registers (asked once, then remembered)."""
        if name not in self._records:
            records = list(self.call_one(name, "omerta_services") or [])
            for record in records:
                if not isinstance(record, ServiceRecord):
                    raise PluginLoadError(
                        f"plugin {name!r}: omerta_services returned {type(record).__name__}, expected ServiceRecord"
                    )
            self._records[name] = records
        return self._records[name]

    def usable_records(self, name: str) -> list[ServiceRecord]:
        return [r for r in self.records_of(name) if r.why_unusable() is None]

    # -- filling needs ----------------------------------------------------------

    def unmet_needs(self) -> list[tuple[str, Need]]:
        """``(plugin, need)`` for each required need of a usable backend that no usable loaded backend provides."""
        provided = {r.provides for name in self.loaded for r in self.usable_records(name)}
        return [
            (name, need)
            for name in self.loaded
            for record in self.usable_records(name)
            for need in record.required()
            if need.kind not in provided
        ]

    def fill_needs(self, available: dict[str, InstalledPlugin], defaults: dict[str, str]) -> None:
        while unmet := self.unmet_needs():
            needer, need = unmet[0]
            provider = self._provider_for(needer, need, available, defaults)
            self.register(available[provider])
            self.pulled_in.append(PulledIn(provider, need.name, needer))

    def _provider_for(
        self, needer: str, need: Need, available: dict[str, InstalledPlugin], defaults: dict[str, str]
    ) -> str:
        configured = defaults.get(need.name)
        if configured is not None:
            if configured not in available:
                raise UnmetNeedError(
                    f"[node] defaults names {configured!r} for {article(need.name)}, but it is not installed; "
                    f"try `{install_hint(configured)}`"
                )
            return configured
        offers: dict[str, list[ServiceRecord]] = {}
        for name, plugin in available.items():
            if name in self.loaded:
                continue
            probe = PluginHost()
            try:
                probe.register(plugin)
                records = probe.usable_records(name)
            except PluginLoadError:
                continue
            matching = [r for r in records if r.provides is need.kind]
            if matching:
                offers[name] = matching
        marked = [name for name, records in offers.items() if any(r.default for r in records)]
        if len(marked) == 1 or (not marked and len(offers) == 1):
            return (marked or list(offers))[0]
        if offers:
            choices = ", ".join(marked or offers)
            raise UnmetNeedError(
                f"{needer} needs {need.describe()} and several plugins provide one ({choices}): "
                f'choose with `--plugins {needer},NAME` or [node] defaults = {{{need.name} = "NAME"}}'
            )
        hint = f"pip install {need.install}" if need.install else f"install a plugin that provides {need.name}"
        raise UnmetNeedError(f"{needer} needs {need.describe()}, and no installed plugin provides one; try `{hint}`")

    # -- reports ----------------------------------------------------------------

    def why_unusable(self, name: str, platform: str = sys.platform) -> str | None:
        """Why none of a plugin's backends can run here; ``None`` when it can run."""
        backends = self.records_of(name)
        reasons = [r.why_unusable(platform) for r in backends]
        if backends and all(reasons):
            return "; ".join(str(r) for r in reasons)
        return None

    def for_other_platform(self, name: str, platform: str = sys.platform) -> bool:
        """True when every backend of the plugin declares platforms other than this one."""
        backends = self.records_of(name)
        return bool(backends) and all(platform not in r.platforms for r in backends)

    def drop(self, name: str) -> None:
        """Unload a plugin selected implicitly that cannot run here (its hooks stop being called)."""
        self.manager.unregister(name=name)
        self.loaded.pop(name, None)
        self._records.pop(name, None)

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
        needs = {n.describe(): n for r in records for n in r.needs}
        return PluginReport(
            name=name,
            distribution=plugin.distribution,
            version=plugin.version,
            hooks=self.hooks_of(name),
            backends=[f"{r.kind}:{r.name}" for r in records],
            provides=sorted({kind_name(r.provides) for r in records}),
            needs=sorted(text for text, n in needs.items() if not n.optional),
            uses=sorted(text for text, n in needs.items() if n.optional),
            usable=reason is None,
            reason=reason,
        )
