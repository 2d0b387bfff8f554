"""Test support for the VPN's lab tests: nodes run as an unprivileged user, and waiting on a condition.

The consumer node runs as ``nobody`` (:mod:`omerta_netlab.nobody`), so its
gateway is built without root; its control socket only answers its own uid,
so calls to it run as ``nobody`` too. The guest's shell
(:mod:`omerta_vm_kvm.testing`) is reached from inside the consumer's gateway
namespace: the only place the guest is reachable from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from omerta_netlab.nobody import NobodyLabNode, prepare_for_nobody, python_as_nobody

__all__ = ["NobodyLabNode", "prepare_for_nobody", "python_as_nobody", "wait_until"]


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """Poll ``condition()`` until it returns something true; that value, or the last falsy one at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
