"""The durable VM registry: every VM and every artefact it has, in SQLite.

An artefact is written here (and committed) BEFORE it is created, so after a
crash the registry names everything that may exist; deleting an artefact that
was never created is a no-op. Rows leave the registry only after the artefact
is gone. Touches only its SQLite file.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.hypervisor import VmInfo, VmState
from omerta_vm_kvm.errors import RegistryDamagedError
from omerta_vm_kvm.network import guest_mac

REGISTRY_FILE = "registry.sqlite3"
#: Artefact kinds, in the order a VM's artefacts are created.
ARTEFACT_KINDS = ("dir", "file", "netns", "tap", "domain")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vms (
    vm_id TEXT PRIMARY KEY,
    consumer TEXT NOT NULL,
    image TEXT NOT NULL,
    vcpus INTEGER NOT NULL,
    memory_mib INTEGER NOT NULL,
    disk_gib INTEGER NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    console_log TEXT,
    domain_type TEXT,
    incarnation TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS artefacts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    vm_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (kind, name)
);
"""


@dataclass(frozen=True)
class Artefact:
    vm_id: str
    kind: str
    name: str


@dataclass(frozen=True)
class VmRow:
    vm_id: str
    consumer: str
    image: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    state: VmState
    created_at: float
    expires_at: float
    console_log: str | None
    domain_type: str | None
    incarnation: str

    def info(self) -> VmInfo:
        return VmInfo(
            vm_id=self.vm_id,
            consumer=PeerId(self.consumer),
            state=self.state,
            created_at=self.created_at,
            expires_at=self.expires_at,
            console_log=self.console_log,
            mac=guest_mac(self.vm_id),
        )

    def as_json(self) -> dict[str, object]:
        return {
            "vm_id": self.vm_id,
            "consumer": self.consumer,
            "image": self.image,
            "vcpus": self.vcpus,
            "memory_mib": self.memory_mib,
            "disk_gib": self.disk_gib,
            "state": self.state.value,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "console_log": self.console_log,
            "domain_type": self.domain_type,
        }


class Registry:
    """One SQLite file; each call is its own committed transaction."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / REGISTRY_FILE
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise RegistryDamagedError(f"VM registry {self.path} is damaged ({exc}); move it away") from exc

    def close(self) -> None:
        self._db.close()

    def add_vm(self, row: VmRow) -> None:
        self._db.execute(
            "INSERT INTO vms VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                row.vm_id,
                row.consumer,
                row.image,
                row.vcpus,
                row.memory_mib,
                row.disk_gib,
                row.state.value,
                row.created_at,
                row.expires_at,
                row.console_log,
                row.domain_type,
                row.incarnation,
            ),
        )

    def set_state(self, vm_id: str, state: VmState) -> None:
        self._db.execute("UPDATE vms SET state=? WHERE vm_id=?", (state.value, vm_id))

    def set_expiry(self, vm_id: str, expires_at: float) -> None:
        self._db.execute("UPDATE vms SET expires_at=? WHERE vm_id=?", (expires_at, vm_id))

    def set_domain_type(self, vm_id: str, domain_type: str) -> None:
        self._db.execute("UPDATE vms SET domain_type=? WHERE vm_id=?", (domain_type, vm_id))

    def vm(self, vm_id: str) -> VmRow | None:
        rows = self._select("WHERE vm_id=?", (vm_id,))
        return rows[0] if rows else None

    def vms(self) -> list[VmRow]:
        return self._select("ORDER BY created_at", ())

    def remove_vm(self, vm_id: str) -> None:
        """Forget a VM; refused (by returning without effect) while artefacts remain."""
        self._db.execute(
            "DELETE FROM vms WHERE vm_id=? AND NOT EXISTS (SELECT 1 FROM artefacts WHERE vm_id=?)", (vm_id, vm_id)
        )

    def record(self, artefact: Artefact) -> None:
        """Write down an artefact that is about to be created."""
        self._db.execute(
            "INSERT OR IGNORE INTO artefacts (vm_id, kind, name) VALUES (?,?,?)",
            (artefact.vm_id, artefact.kind, artefact.name),
        )

    def forget(self, artefact: Artefact) -> None:
        """Drop an artefact that has been deleted."""
        self._db.execute("DELETE FROM artefacts WHERE kind=? AND name=?", (artefact.kind, artefact.name))

    def artefacts(self, vm_id: str | None = None) -> list[Artefact]:
        """Artefacts newest first: the order to delete them in."""
        if vm_id is None:
            cursor = self._db.execute("SELECT vm_id, kind, name FROM artefacts ORDER BY seq DESC")
        else:
            cursor = self._db.execute(
                "SELECT vm_id, kind, name FROM artefacts WHERE vm_id=? ORDER BY seq DESC", (vm_id,)
            )
        return [Artefact(*row) for row in cursor.fetchall()]

    def orphan_vm_ids(self) -> list[str]:
        """VM ids that have artefacts but no VM row (a crash between the two deletes)."""
        cursor = self._db.execute("SELECT DISTINCT vm_id FROM artefacts WHERE vm_id NOT IN (SELECT vm_id FROM vms)")
        return [row[0] for row in cursor.fetchall()]

    def _select(self, where: str, params: tuple[object, ...]) -> list[VmRow]:
        cursor = self._db.execute(
            "SELECT vm_id, consumer, image, vcpus, memory_mib, disk_gib, state, created_at, expires_at,"
            f" console_log, domain_type, incarnation FROM vms {where}",
            params,
        )
        try:
            return [self._row(r) for r in cursor.fetchall()]
        except ValueError as exc:
            raise RegistryDamagedError(f"VM registry {self.path} holds a row it cannot read ({exc})") from exc

    @staticmethod
    def _row(r: tuple[Any, ...]) -> VmRow:
        return VmRow(
            vm_id=r[0],
            consumer=r[1],
            image=r[2],
            vcpus=r[3],
            memory_mib=r[4],
            disk_gib=r[5],
            state=VmState(r[6]),
            created_at=r[7],
            expires_at=r[8],
            console_log=r[9],
            domain_type=r[10],
            incarnation=r[11],
        )
