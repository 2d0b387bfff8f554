"""The one error family of the ``kvm`` plugin; every message is one line a user can act on.

Touches nothing.
"""

from omerta_core.errors import OmertaError


class KvmError(OmertaError):
    """Base of every error the ``kvm`` plugin raises on purpose."""


class AdmissionError(KvmError):
    """A request the provider refuses: too large, too long, too many, malformed."""


class ImageNotFoundError(AdmissionError):
    """A request for an image this provider does not have."""


class InvalidSshKeyError(AdmissionError):
    """An SSH public key that is not one line of ``TYPE BASE64 [COMMENT]``."""


class HypervisorUnavailableError(KvmError):
    """libvirt or QEMU is missing or not answering; no VM can be created."""


class UnknownVmError(KvmError, LookupError):
    """A VM id this node does not hold."""


class NotStartedError(KvmError):
    """A VM held before its first instruction whose caller said not to boot it (it was deleted)."""


class BootError(KvmError):
    """A VM that did not signal readiness in time or whose domain died while booting."""


class RegistryDamagedError(KvmError):
    """The VM registry file is not a database this plugin wrote, or holds a row it cannot read."""
