"""The networks this node belongs to, kept in ``networks.json`` in the plugin's state directory.

The file holds network keys, so it is written with mode 0600, atomically.
Touches only that file.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omerta_discovery_gossip.errors import NetworkError
from omerta_discovery_gossip.network import Network

FILE_NAME = "networks.json"
FILE_MODE = 0o600


@dataclass(frozen=True)
class JoinedNetwork:
    """A joined network and the bootstrap entries it came with."""

    network: Network
    bootstrap: tuple[str, ...] = ()
    joined_at: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.network.id_hex,
            "name": self.network.name,
            "bootstrap": list(self.bootstrap),
            "joined_at": self.joined_at,
        }


#: Longest network name accepted (it travels in invites and shows in tables).
MAX_NAME_CHARS = 64


def check_name(name: str) -> None:
    """A network name must be non-empty, printable and short."""
    if not name.strip():
        raise NetworkError("a network needs a name: `omerta network create NAME`")
    if name != name.strip() or not name.isprintable() or len(name) > MAX_NAME_CHARS:
        raise NetworkError(
            f"network name {name!r} must be printable, at most {MAX_NAME_CHARS} characters, without outer spaces"
        )


class NetworkStore:
    """Reads and writes the joined networks of one state directory."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME

    def load(self) -> list[JoinedNetwork]:
        if not self.path.exists():
            return []
        try:
            entries = json.loads(self.path.read_text())
            return [_entry(e) for e in entries]
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            reason = type(exc).__name__ if isinstance(exc, RecursionError) else f"{exc!s:.200}"
            raise NetworkError(f"{self.path} is damaged ({reason}); fix or remove it") from exc

    def find(self, name_or_id: str) -> JoinedNetwork:
        """The joined network called ``name_or_id``, or whose id is or starts with it."""
        joined = self.load()
        matches = [m for m in joined if m.network.name == name_or_id] or [
            m for m in joined if name_or_id and m.network.id_hex.startswith(name_or_id.lower())
        ]
        if not matches:
            raise NetworkError(f"not a member of a network called {name_or_id!r} (see `omerta network list`)")
        if len(matches) > 1:
            raise NetworkError(f"{name_or_id!r} names several networks; give more of the id instead")
        return matches[0]

    def add(self, network: Network, bootstrap: tuple[str, ...] = ()) -> JoinedNetwork:
        """Join ``network``; names are unique among joined networks and never empty."""
        current = self.load()
        if any(m.network.id == network.id for m in current):
            raise NetworkError(f"already a member of network {network.name!r} ({network.id_hex})")
        check_name(network.name)
        if any(m.network.name == network.name for m in current):
            raise NetworkError(
                f"a network called {network.name!r} is already joined; choose another name "
                f"(or `omerta network leave {network.name}` first)"
            )
        membership = JoinedNetwork(network, bootstrap, time.time())
        self._write([*current, membership])
        return membership

    def remove(self, name_or_id: str) -> JoinedNetwork:
        gone = self.find(name_or_id)
        self._write([m for m in self.load() if m.network.id != gone.network.id])
        return gone

    def _write(self, memberships: list[JoinedNetwork]) -> None:
        entries = [{**m.as_json(), "key": base64.b64encode(m.network.key).decode()} for m in memberships]
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "w") as handle:
            json.dump(entries, handle, indent=2)
        os.replace(temporary, self.path)


def _entry(e: Any) -> JoinedNetwork:
    name, key, bootstrap, joined_at = e["name"], e["key"], e.get("bootstrap", []), e.get("joined_at", 0)
    if not isinstance(name, str) or not isinstance(key, str) or not isinstance(bootstrap, list):
        raise ValueError("an entry needs a text name and key and a bootstrap list")
    if not all(isinstance(b, str) for b in bootstrap) or not isinstance(joined_at, int | float):
        raise ValueError("bootstrap entries are text and joined_at a number")
    return JoinedNetwork(Network(name, base64.b64decode(key, validate=True)), tuple(bootstrap), joined_at)
