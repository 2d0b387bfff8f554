"""Lab nodes run by ``nobody``: what a consumer on a laptop is (its VPN gateway is built without root).

The node runs the system's Python as ``nobody`` with this environment's packages added by path (the
venv's own interpreter may live in root's home). Its control socket answers only its own uid, so
calls to it run as ``nobody`` too. Used by the VPN's lab tests and the NAT-lab rental demo. Touches
the directories it is asked to hand to ``nobody`` (and the mode of their parents) and the processes
it starts.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omerta_core.errors import ControlError
from omerta_netlab.nodes import LabNode

NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
#: A Python every user may run.
SYSTEM_PYTHON = "/usr/bin/python3"
#: Runs the ``omerta`` command line (``python -m omerta_core``) with the arguments that follow.
RUN_OMERTA = "import runpy; runpy.run_module('omerta_core', run_name='__main__', alter_sys=True)"
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


def _site_dirs() -> list[str]:
    return [p for p in site.getsitepackages() if Path(p).is_dir()]


def python_as_nobody(code: str) -> list[str]:
    """argv running ``code`` as ``nobody`` with this environment's packages."""
    prelude = f"import site, sys\nfor d in {_site_dirs()!r}: site.addsitedir(d)\n"
    return [*AS_NOBODY, SYSTEM_PYTHON, "-c", prelude + code]


def nobody_can_import(*modules: str) -> bool:
    """Whether ``nobody`` can import ``modules`` from this environment (its directories must be traversable)."""
    done = subprocess.run(python_as_nobody(f"import {', '.join(modules)}"), capture_output=True, check=False)
    return done.returncode == 0


def prepare_for_nobody(directory: Path) -> Path:
    """A directory ``nobody`` owns, under a path it may traverse."""
    directory.mkdir(parents=True, exist_ok=True)
    for parent in [directory, *directory.parents]:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o711)
    os.chown(directory, NOBODY, NOBODY)
    return directory


class NobodyLabNode(LabNode):
    """A lab node run by ``nobody``."""

    def argv(self, *sets: str, args: Sequence[str] = ()) -> list[str]:
        argv = super().argv(*sets, args=args)
        at = argv.index(sys.executable)
        assert argv[at + 1 : at + 3] == ["-m", "omerta_core"]
        return [*argv[:at], *python_as_nobody(RUN_OMERTA), *argv[at + 3 :]]

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60.0) -> Any:
        argv = [*python_as_nobody(CALL), str(self.state_dir), method, json.dumps(params or {}), str(timeout)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30, check=False)
        if done.returncode != 0:
            raise ControlError(f"{method} as nobody failed: {done.stderr.strip()[-2000:]}")
        answer = json.loads(done.stdout)
        if "error" in answer:
            raise ControlError(answer["error"])
        return answer["result"]
