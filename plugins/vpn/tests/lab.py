"""Test support for the VPN's lab tests: nodes run as an unprivileged user, and a shell in the guest.

The consumer node runs as ``nobody`` with the system's Python (the venv's
packages added by path), so its gateway is built without root; its control
socket only answers its own uid, so calls to it run as ``nobody`` too. The
guest's shell (:mod:`omerta_vm_kvm.testing`) is reached from inside the
consumer's gateway namespace: the only place the guest is reachable from.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omerta_netlab.nodes import LabNode
from omerta_vm_kvm.testing import SYSTEM_PYTHON

from omerta_core.errors import ControlError

NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def _site_dirs() -> list[str]:
    return [p for p in site.getsitepackages() if Path(p).is_dir()]


def python_as_nobody(code: str) -> list[str]:
    """argv running ``code`` as ``nobody`` with this environment's packages."""
    prelude = f"import site, sys\nfor d in {_site_dirs()!r}: site.addsitedir(d)\n"
    return [*AS_NOBODY, SYSTEM_PYTHON, "-c", prelude + code]


class NobodyLabNode(LabNode):
    """A lab node run by ``nobody``: what a consumer on a laptop is."""

    def argv(self, *sets: str, args: Sequence[str] = ()) -> list[str]:
        argv = super().argv(*sets, args=args)
        at = argv.index(sys.executable)
        assert argv[at + 1 : at + 3] == ["-m", "omerta_core"]
        run = python_as_nobody("import runpy; runpy.run_module('omerta_core', run_name='__main__', alter_sys=True)")
        return [*argv[:at], *run, *argv[at + 3 :]]

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60.0) -> Any:
        argv = [*python_as_nobody(CALL), str(self.state_dir), method, json.dumps(params or {}), str(timeout)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{method} as nobody failed: {done.stderr.strip()[-2000:]}")
        answer = json.loads(done.stdout)
        if "error" in answer:
            raise ControlError(answer["error"])
        return answer["result"]


#: Calls a control method (as the node's own user) and prints ``{"result": ...}`` or ``{"error": ...}``.
CALL = """
import json, pathlib, sys
from omerta_core.control.client import call
from omerta_core.errors import OmertaError
try:
    result = call(pathlib.Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), timeout=float(sys.argv[4]))
    print(json.dumps({"result": result}))
except OmertaError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def prepare_for_nobody(directory: Path) -> Path:
    """A directory ``nobody`` owns, under a path it may traverse."""
    directory.mkdir(parents=True, exist_ok=True)
    for parent in [directory, *directory.parents]:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o711)
    os.chown(directory, NOBODY, NOBODY)
    return directory


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """Poll ``condition()`` until it returns something true; that value, or the last falsy one at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
