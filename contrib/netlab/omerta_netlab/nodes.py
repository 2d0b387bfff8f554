"""Real ``omerta node`` processes inside lab hosts, driven through their control sockets.

Each node runs ``python -m omerta_core.cli``-style inside a host's namespace
with its own state directory (and so its own identity and control socket,
which works across namespaces because it is a filesystem socket). Touches the
state directories it is given, the processes it starts (through
:meth:`omerta_netlab.lab.Lab.popen`) and their control sockets.
"""

from __future__ import annotations

import functools
import os
import signal
from pathlib import Path
from typing import Any

from omerta_transport_udp.testing import UdpNode

from omerta_core.testing import STOP_TIMEOUT_S
from omerta_netlab.lab import Host, Lab

#: How often mailbox and status polls run.
POLL_INTERVAL_S = 0.05


class LabNode(UdpNode):
    """One ``omerta node`` process on one lab host, started inside the host's namespace."""

    def __init__(self, lab: Lab, host: Host, state_dir: Path, plugins: str = "udp,relay") -> None:
        super().__init__(state_dir, plugins, launcher=functools.partial(lab.popen, host))
        self.lab = lab
        self.host = host

    def relay_status(self) -> dict[str, Any]:
        return dict(self.call("relay.status"))

    def kill9(self) -> None:
        """Kill the node's whole process group without letting it clean up (a crash)."""
        if self.running:
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        if self.process is not None:
            self.lab.stop_process(self.process)
            return self.process.returncode
        return None
