"""Keeps a gateway's uplink (pasta) alive exactly as long as the gateway's namespace anchor.

``python -m omerta_vpn.uplink_watch HELPER_PID PIDFILE PASTA_ARGV...`` runs
pasta (which attaches to the helper's namespaces, then daemonizes), prints
``ready`` (or ``error: ...``) on stdout, and waits on a pidfd for the helper
to exit: when the consumer detaches the gateway, or when the consumer's node
dies (its socket to the helper closes), the helper exits, and this process
ends pasta and exits too. It runs in a session of its own, so a crash that
takes the node's process group still leaves it to clean up. Standard library
only. Touches the pasta process it starts and its pid file.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

PASTA_TIMEOUT_S = 15.0


def main(argv: list[str]) -> int:
    helper_pid, pidfile, pasta_argv = int(argv[1]), Path(argv[2]), argv[3:]
    helper = os.pidfd_open(helper_pid)
    done = subprocess.run(pasta_argv, capture_output=True, timeout=PASTA_TIMEOUT_S, check=False)
    if done.returncode != 0:
        print(f"error: {done.stderr.decode(errors='replace').strip()[:500]}", flush=True)
        return 1
    pasta_pid = int(pidfile.read_text().strip())
    pasta = os.pidfd_open(pasta_pid)
    print("ready", flush=True)
    with contextlib.suppress(OSError):
        os.close(sys.stdout.fileno())
    select.select([helper, pasta], [], [])
    with contextlib.suppress(OSError):
        signal.pidfd_send_signal(pasta, signal.SIGTERM)
    select.select([pasta], [], [], 5.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
