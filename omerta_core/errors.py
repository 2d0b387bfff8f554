"""Typed exceptions raised at the kernel's boundary.

Every message is one line a user can act on; the CLI prints it as is.
"""

from pathlib import Path


class OmertaError(Exception):
    """Base of every error the kernel or a plugin raises on purpose."""


class UnknownPluginError(OmertaError):
    """A plugin name that no installed distribution registers."""


class PluginUnavailableError(OmertaError):
    """A plugin that is installed but cannot work on this machine."""


class PluginLoadError(OmertaError):
    """A plugin whose entry point failed to import."""


class IncompatiblePluginError(PluginLoadError):
    """A plugin built for a kernel plugin API other than this kernel's."""


class ConfigError(OmertaError):
    """A configuration file, variable or flag that cannot be used."""


class IdentityError(OmertaError):
    """An identity key that is missing, unreadable or unsafe."""


class ControlError(OmertaError):
    """A control-API request that failed, or a node that cannot be reached."""


class ProtocolError(ControlError):
    """A control-API frame that breaks the protocol (size, encoding, version)."""


class UnmetNeedError(PluginUnavailableError):
    """A selected plugin needs a service kind that nothing installed (or running) provides."""


class DependencyCycleError(OmertaError):
    """Backends whose needs form a cycle, so none of them can start first."""


class ConflictError(OmertaError):
    """Two plugins claim the same thing: a backend name, a control method, a command or a channel."""


class UnknownMethodError(ControlError):
    """The running node serves no such control method: the plugin behind it is not loaded there."""

    def __init__(self, method: str, state_dir: Path) -> None:
        super().__init__(f"the running node does not serve {method!r}")
        self.method = method
        self.state_dir = state_dir


class UnknownIdError(OmertaError, LookupError):
    """An id, or id prefix, that matches nothing known."""


class AmbiguousIdError(OmertaError, LookupError):
    """An id prefix that matches more than one known id."""
