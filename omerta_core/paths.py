"""Where the node keeps its files: the state directory and what lives in it.

Touches only the environment (to read XDG variables) and the file system
(to create the state directory with mode 0700).
"""

from __future__ import annotations

import os
from pathlib import Path


def default_state_dir() -> Path:
    """``$XDG_DATA_HOME/omerta`` (``~/.local/share/omerta`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "omerta"


def default_config_file() -> Path:
    """``$XDG_CONFIG_HOME/omerta/config.toml`` (``~/.config/...`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "omerta" / "config.toml"


def ensure_state_dir(path: Path) -> Path:
    """Create the state directory (mode 0700) if needed and return it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def ensure_plugin_dir(state_dir: Path, plugin: str) -> Path:
    """Create ``plugins/<plugin>`` inside the state directory, every level of it mode 0700.

    Creating only the innermost directory with ``parents=True`` would leave the
    state directory itself at the umask's 0755.
    """
    path = ensure_state_dir(state_dir)
    for part in ("plugins", plugin):
        path = ensure_state_dir(path / part)
    return path


def control_socket_path(state_dir: Path) -> Path:
    return state_dir / "control.sock"


def identity_key_path(state_dir: Path) -> Path:
    return state_dir / "identity.key"
