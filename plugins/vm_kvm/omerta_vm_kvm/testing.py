"""Driving the test guest from its network: a shell on its agent port.

The test guest (:mod:`omerta_vm_kvm.guest_builder`) serves ``/bin/sh`` on TCP
:data:`~omerta_vm_kvm.guest_builder.AGENT_PORT` to whoever is on its only
network, which is its consumer. For tests and benchmarks that sit there (a
VPN gateway's namespace, entered with an argv prefix). Touches only the
processes it runs.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from omerta_vm_kvm.guest_builder import AGENT_PORT

#: A Python every user may run (the venv's interpreter may live in root's home).
SYSTEM_PYTHON = "/usr/bin/python3"
#: Marks the end of a command's output; the exit status follows it.
STATUS_MARKER = "omerta-rc="

AGENT_CLIENT = f"""
import socket, sys
host, port, command, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
with socket.create_connection((host, port), timeout=timeout) as s:
    s.sendall((command + "\\necho {STATUS_MARKER}$?\\nexit\\n").encode())
    out = b""
    while chunk := s.recv(65536):
        out += chunk
sys.stdout.write(out.decode(errors="replace"))
"""


class GuestShellError(RuntimeError):
    """The guest's shell could not be reached."""


def guest_shell(enter: Sequence[str], address: str, command: str, timeout: float = 60.0) -> tuple[int, str]:
    """Run ``command`` in the guest at ``address``, from inside ``enter``; its exit status and output."""
    argv = [*enter, SYSTEM_PYTHON, "-c", AGENT_CLIENT, address, str(AGENT_PORT), command, str(timeout)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30, check=False)
    if done.returncode != 0:
        raise GuestShellError(f"no shell in the guest: {done.stderr.strip()[-1000:]}")
    out, _, status = done.stdout.rpartition(STATUS_MARKER)
    return int(status.strip() or "255"), out
