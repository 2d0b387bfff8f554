"""Node configuration: built-in defaults, plugin defaults, a TOML file, environment, flags.

Precedence, lowest to highest (each layer overrides the ones before it):

1. kernel defaults (:data:`NODE_DEFAULTS`),
2. plugin defaults (the ``omerta_config_defaults`` hook), under ``plugins.<name>``,
3. the TOML file (``--config``, ``$OMERTA_CONFIG``, else ``$XDG_CONFIG_HOME/omerta/config.toml``),
4. environment variables: ``OMERTA_<KEY>`` for ``node.<key>`` and
   ``OMERTA_<PLUGIN>__<KEY>`` for ``plugins.<plugin>.<key>``,
5. command-line flags (``--state-dir``, ``--plugins``, ``--set section.key=value``).

Every value remembers which layer set it, so ``omerta config show`` can say.
Touches only the configuration file it is asked to read.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omerta_core.errors import ConfigError
from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_core.paths import default_config_file, default_state_dir

ENV_PREFIX = "OMERTA_"
#: Environment variables the kernel reads itself rather than as configuration keys.
ENV_RESERVED = {"OMERTA_CONFIG", "OMERTA_TRACEBACK"}

NODE_DEFAULTS: dict[str, Any] = {
    "state_dir": str(default_state_dir()),
    "plugins": [],  # empty: every installed plugin
    "log_level": "info",
    "log_json": False,
    "bootstrap": [],
    # The port the node's transport listens on; None: the transport's own setting (plugins.udp.port).
    "port": None,
    "shutdown_timeout_s": 1.5,
    # Per service kind, the plugin that fills a need for it and that node.service(kind) prefers
    # when several run: [node] defaults = {transport = "udp"}. Empty: see omerta_core.hookspecs.
    "defaults": {},
}


@dataclass
class Setting:
    value: Any
    source: str


@dataclass
class Config:
    """Layered settings, addressed as ``"node.state_dir"`` or ``"plugins.udp.port"``."""

    settings: dict[str, Setting] = field(default_factory=dict)
    file: Path | None = None
    #: Every key a default defines (kernel and loaded plugins), with its default value.
    defaults: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        setting = self.settings.get(key)
        return default if setting is None else setting.value

    def node(self, key: str) -> Any:
        return self.get(f"node.{key}")

    def table(self, prefix: str) -> dict[str, Any]:
        """The settings under ``prefix`` (``"node.defaults"``), without it."""
        start = f"{prefix}."
        return {k[len(start) :]: s.value for k, s in self.settings.items() if k.startswith(start)}

    def plugin(self, name: str) -> dict[str, Any]:
        """All settings of one plugin, without the ``plugins.<name>.`` prefix."""
        return self.table(f"plugins.{name}")

    @property
    def state_dir(self) -> Path:
        return Path(self.node("state_dir")).expanduser()

    def set(self, key: str, value: Any, source: str) -> None:
        self.settings[key] = Setting(value, source)

    def merge(self, values: Mapping[str, Any], source: str, prefix: str = "") -> None:
        for key, value in values.items():
            full = f"{prefix}{key}"
            if isinstance(value, Mapping):
                self.merge(value, source, f"{full}.")
            else:
                self.set(full, value, source)

    def as_dict(self) -> dict[str, Any]:
        """The settings as nested dicts, as a TOML file would hold them."""
        tree: dict[str, Any] = {}
        for key, setting in sorted(self.settings.items()):
            *parents, leaf = key.split(".")
            node = tree
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = setting.value
        return tree


def parse_value(text: str) -> Any:
    """Read a value from an environment variable or ``--set``: TOML-ish scalars and lists."""
    lowered = text.strip().lower()
    if lowered in {"true", "yes", "on"}:
        return True
    if lowered in {"false", "no", "off"}:
        return False
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, an integer past the digit limit, or nested too deeply
        return text


def split_names(value: Any) -> list[str]:
    """Plugin lists arrive as ``"kvm,gossip"`` from flags and env, as lists from TOML."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(part, str) for part in value):
        raise ConfigError(f"node.plugins must be a list of plugin names or a comma-separated text, not {value!r:.60}")
    return list(value)


def load(
    *,
    config_file: Path | None = None,
    plugin_defaults: Mapping[str, Mapping[str, Any]] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the configuration from every layer, in the documented precedence."""
    environ = os.environ if environ is None else environ
    config = Config()
    config.merge(NODE_DEFAULTS, "default", "node.")
    for plugin, defaults in (plugin_defaults or {}).items():
        config.merge(defaults, f"plugin {plugin}", f"plugins.{plugin}.")
    config.defaults = {key: setting.value for key, setting in config.settings.items()}

    explicit = config_file or (Path(environ["OMERTA_CONFIG"]) if "OMERTA_CONFIG" in environ else None)
    path = explicit or default_config_file()
    if path.exists():
        config.merge(_read_toml(path), f"file {path}")
        config.file = path
    elif explicit is not None:
        raise ConfigError(f"config file {path} does not exist")

    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in ENV_RESERVED:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        plugin, sep, key = rest.partition("__")
        key_path = f"plugins.{plugin}.{key}" if sep else f"node.{rest}"
        config.set(key_path, parse_value(raw), f"env {name}")

    for key, value in (overrides or {}).items():
        config.set(key, value, "flag")

    for listed in ("plugins", "bootstrap"):  # "a,b" from a flag or the environment
        key = f"node.{listed}"
        config.set(key, split_names(config.get(key) or []), config.settings[key].source)
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError, text that is not UTF-8, nesting, huge integers
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path}: {reason}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


#: What ``node.log_level`` may be.
LOG_LEVELS = ("debug", "info", "warning", "error")

#: Settings of ``[node]`` that take a table of their own (``node.defaults.transport``).
NODE_TABLES = ("defaults",)


def check(config: Config, installed: Collection[str]) -> None:
    """Refuse settings nobody reads and values of the wrong type, naming the nearest valid key.

    Only keys set by a file, the environment or a flag are checked: defaults
    define what is valid. A ``[plugins.<name>]`` section of a plugin that is
    installed but not loaded is left alone (its keys cannot be known);
    one of a plugin nobody installed is an error.
    """
    defaults = config.defaults
    loaded_sections = {k.split(".")[1] for k in defaults if k.startswith("plugins.")}
    for key, setting in sorted(config.settings.items()):
        if setting.source == "default" or setting.source.startswith("plugin "):
            continue
        _check_key(key, setting, defaults, loaded_sections, installed)
        if key in defaults:
            _check_value(key, setting, defaults[key])
    for entry in split_names(config.node("bootstrap") or []):
        check_bootstrap_entry(entry)
    level = config.node("log_level")
    if level not in LOG_LEVELS:
        raise ConfigError(f"node.log_level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    port = config.node("port")
    if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 0 <= port < 65536):
        raise ConfigError(f"node.port must be a port number 0-65535, got {port!r}")


def check_bootstrap_entry(entry: str) -> None:
    """``HOST:PORT`` or ``PEERID@HOST:PORT``, else a :class:`ConfigError` saying so."""
    peer, sep, address = entry.strip().rpartition("@")
    try:
        Endpoint.parse(address)
        if sep:
            PeerId(peer)
    except ValueError as exc:
        raise ConfigError(f"bad bootstrap entry {entry!r}: expected HOST:PORT or PEERID@HOST:PORT") from exc


def _check_key(
    key: str, setting: Setting, defaults: Mapping[str, Any], loaded: Collection[str], installed: Collection[str]
) -> None:
    parts = key.split(".")
    if parts[0] == "node" and len(parts) == 3 and parts[1] in NODE_TABLES:
        return
    if parts[0] == "plugins" and len(parts) > 2 and parts[1] not in loaded:
        if parts[1] in installed:
            return
        known = ", ".join(sorted(installed)) or "none"
        raise ConfigError(
            f"unknown setting {key} ({_where(setting)}): no plugin {parts[1]!r} is installed (installed: {known})"
        )
    if key in defaults:
        return
    nearest = difflib.get_close_matches(key, list(defaults), n=1, cutoff=0.6)
    hint = f"; did you mean {nearest[0]}?" if nearest else _sections_hint(parts[0], loaded)
    raise ConfigError(f"unknown setting {key} ({_where(setting)}){hint}")


def _sections_hint(section: str, loaded: Collection[str]) -> str:
    if section not in {"node", "plugins"}:
        return "; settings live under [node] and [plugins.<name>]"
    return " (see `omerta config show` for every valid key)"


def _where(setting: Setting) -> str:
    return "from --set" if setting.source == "flag" else f"from {setting.source}"


_EXPECTED: dict[type, str] = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _check_value(key: str, setting: Setting, default: Any) -> None:
    value = setting.value
    if default is None or isinstance(default, Mapping):
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif isinstance(default, str | list):  # a list may be given as "a,b"; a host as a list of hosts
        ok = isinstance(value, str | list)
    else:
        return
    if not ok:
        expected = _EXPECTED.get(type(default), "a list")
        raise ConfigError(f"{key} ({_where(setting)}) must be {expected}, got {value!r}")
