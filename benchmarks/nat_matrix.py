"""NAT traversal matrix: real ``omerta node --plugins udp,relay`` processes in the netns NAT lab.

Builds the lab (two relays, two hosts per kind: public, full cone, address-
restricted, port-restricted, symmetric), then for every ordered pair of kinds
starts fresh nodes, lets the first send to the second knowing only its peer
id (plus its address when public), and records the path the pair settled on,
the time to the first delivered message and the time until both ends route
directly (both measured by polling the nodes' control APIs every 20 ms).
Prints a table, then the headline figures last as ``name: value``.
Needs root (network namespaces, nftables). Run with no arguments.
"""

from __future__ import annotations

import itertools
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from omerta_netlab import Lab, remove_stale_namespaces
from omerta_netlab.matrix import KINDS, NatMatrix, PairResult

PREFIX = "onlb"


def _exit_on_sigterm(main_pid: int) -> None:
    """Turn SIGTERM into SystemExit in this process only, so the lab is torn down by ``with``."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != main_pid:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def _fmt(seconds: float | None) -> str:
    return f"{seconds * 1000:8.1f}" if seconds is not None else "       -"


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("nat_matrix needs root: it builds network namespaces and nftables NAT routers")
    remove_stale_namespaces(PREFIX)
    started = time.monotonic()
    results: list[PairResult] = []
    with tempfile.TemporaryDirectory(prefix="nat-matrix-") as workdir, Lab(prefix=PREFIX) as lab:
        matrix = NatMatrix(lab, Path(workdir))
        _exit_on_sigterm(os.getpid())
        matrix.start_relays()
        print(f"{'pair':44s} {'path':7s} {'first msg ms':>12s} {'direct ms':>10s}  expected")
        for source, target in itertools.product(KINDS, KINDS):
            result = matrix.run_pair(source, target)
            results.append(result)
            expected = "direct" if result.expected_direct else "relay"
            path = result.path if result.connected else f"{result.path}!"
            print(
                f"{result.name:44s} {path:7s} {_fmt(result.first_message_s):>12s} {_fmt(result.direct_s):>10s}"
                f"  {expected}",
                flush=True,
            )
    connected = [r for r in results if r.connected]
    direct = [r for r in results if r.connected and r.path == "direct"]
    first = [r.first_message_s for r in connected if r.first_message_s is not None]
    to_direct = [r.direct_s for r in direct if r.direct_s is not None]
    print(f"pairs: {len(results)}, run time {time.monotonic() - started:.0f} s")
    print(
        f"nat_first_message_median_ms: {statistics.median(first) * 1000:.1f}"
        if first
        else "nat_first_message_median_ms: -"
    )
    print(
        f"nat_time_to_direct_median_ms: {statistics.median(to_direct) * 1000:.1f}"
        if to_direct
        else "nat_time_to_direct_median_ms: -"
    )
    print(f"nat_pairs_connected_ratio: {len(connected) / len(results):.2f}")
    print(f"nat_direct_ratio: {len(direct) / len(results):.2f}")


if __name__ == "__main__":
    main()
