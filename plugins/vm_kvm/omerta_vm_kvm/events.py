"""The provider lifecycle log: one JSON line per step of every VM.

Steps: request, admission, create, boot, ready, renew, release, expire,
stopped (QEMU dead, every artefact but libvirt's record of the domain deleted),
delete, reclaim, failed. Each line is appended to ``lifecycle.jsonl`` in the
plugin's state directory (and mirrored to the node's structlog logger).
Touches only that file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

EVENTS_FILE = "lifecycle.jsonl"


class LifecycleLog:
    def __init__(self, directory: Path, log: Any) -> None:
        self.path = directory / EVENTS_FILE
        self._log = log

    def step(self, step: str, vm_id: str, **details: Any) -> None:
        line = {"ts": round(time.time(), 6), "step": step, "vm_id": vm_id, **details}
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line, sort_keys=True) + "\n")
        self._log.info("vm " + step, vm_id=vm_id, **details)
