"""The consumer's SSH into its rented VMs: its key, the guests' pinned host keys, the ``ssh`` argv, the probe.

The key is ``<state>/plugins/rental/id_ed25519`` (ed25519, made with ``ssh-keygen`` on first use; one per
node, so per consumer identity); its public half goes into every request of the node. A rental's guest
host key, which the provider read from the guest before anyone could log in and sent in its ``ready``
message, is pinned in ``<state>/plugins/rental/known_hosts/<rental>``: ``ssh`` runs with
``StrictHostKeyChecking=yes`` against that file alone, so a different machine at the VM's address is
refused. When the provider sent no host key (an image that does not print one), the file starts empty
and ``ssh`` accepts the first key it sees for this rental and refuses any other later (``accept-new``).
Each rental has its own file because every consumer gateway leases its VM the same address.
Touches the key, the ``known_hosts`` directory; runs ``ssh-keygen`` and ``ssh``.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from omerta_core.errors import OmertaError

KEY_NAME = "id_ed25519"
#: The account the consumer logs in as (the cloud-init seed and the test guest both make it).
GUEST_USER = "omerta"
#: Seconds one SSH attempt may take to connect (TCG guests answer slowly on a busy host).
CONNECT_TIMEOUT_S = 10
#: While waiting for a guest to answer: a failed login attempt is followed by the next after this pause.
PROBE_EVERY_S = 0.2
#: An attempt running this long without an answer gets company (it may wait on ARP for an address the guest did
#: not have yet), up to this many attempts at once. Sooner would only slow every handshake: each runs in the
#: guest's one (emulated) vCPU.
PROBE_STALL_S = 2.0
PROBE_OVERLAP = 3


class SshError(OmertaError):
    """The consumer's SSH key cannot be made, or a rental cannot be reached over SSH (one line)."""


def key_path(rental_dir: Path) -> Path:
    """This consumer's private key in the rental plugin's state directory, created on first use."""
    rental_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = rental_dir / KEY_NAME
    if not key.exists():
        argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "omerta-rental", "-f", str(key)]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
        except FileNotFoundError as exc:
            raise SshError("ssh-keygen is not installed (apt-get install openssh-client)") from exc
        if done.returncode != 0:
            raise SshError(f"ssh-keygen failed: {done.stderr.strip()} (install openssh-client)")
    return key


def public_key(rental_dir: Path) -> str:
    """The public half of :func:`key_path`, one OpenSSH line."""
    return key_path(rental_dir).with_suffix(".pub").read_text().strip()


def known_hosts(rental_dir: Path, rental: str) -> Path:
    return rental_dir / "known_hosts" / rental


def pin(rental_dir: Path, rental: str, address: str, host_key: str) -> Path:
    """Write the rental's known-hosts file: ``address host_key``, or empty when no host key is known."""
    path = known_hosts(rental_dir, rental)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    key = " ".join(host_key.split()[:2])
    path.write_text(f"{address} {key}\n" if key else "")
    return path


def unpin(rental_dir: Path, rental: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        known_hosts(rental_dir, rental).unlink()


def ssh_argv(enter: Sequence[str], key: Path, known: Path, address: str, pinned: bool,
             batch: bool = False) -> list[str]:  # fmt: skip
    """``ssh`` to the rental's guest, run inside the consumer's gateway namespace (``enter``)."""
    options = [
        "IdentitiesOnly=yes",
        f"UserKnownHostsFile={known}",
        "GlobalKnownHostsFile=/dev/null",
        f"StrictHostKeyChecking={'yes' if pinned else 'accept-new'}",
        "UpdateHostKeys=no",
        f"ConnectTimeout={CONNECT_TIMEOUT_S}",
        "LogLevel=ERROR",
    ]
    if batch:
        options.append("BatchMode=yes")
    # -F none: no user or system ssh_config can send this elsewhere (a ProxyJump, another identity)
    return [*enter, "ssh", "-F", "none", "-i", str(key), *(a for o in options for a in ("-o", o)),
            f"{GUEST_USER}@{address}"]  # fmt: skip


async def answers(argv: Sequence[str], timeout: float) -> tuple[bool, str]:
    """Log in with ``argv`` (a :func:`ssh_argv` in batch mode) and run ``true``; whether it worked, and why not."""
    process = await asyncio.create_subprocess_exec(
        *argv, "true", stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = await asyncio.wait_for(process.communicate(), timeout)
    except (TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        return False, f"no answer within {timeout:.0f} s"
    reason = err.decode(errors="replace").strip().splitlines()
    return process.returncode == 0, reason[-1] if reason else f"ssh exited {process.returncode}"


async def first_answer(argv: Sequence[str], within: float, wanted: Callable[[], bool]) -> tuple[bool, str]:
    """Log in (:func:`answers`) until it works, ``within`` seconds pass or ``wanted()`` turns false; whether one
    worked, and the last reason.

    One attempt at a time, the next :data:`PROBE_EVERY_S` after one fails (a refused connection: the SSH
    server is not listening yet). An attempt that hangs for :data:`PROBE_STALL_S` (made before the guest had
    its address, it waits on ARP) gets another beside it, up to :data:`PROBE_OVERLAP`.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    running: set[asyncio.Task[tuple[bool, str]]] = set()
    next_start, why = loop.time(), "no attempt finished"
    try:
        while wanted() and loop.time() < deadline:
            if len(running) < PROBE_OVERLAP and loop.time() >= next_start:
                running.add(asyncio.create_task(answers(argv, CONNECT_TIMEOUT_S + 5)))
                next_start = loop.time() + PROBE_STALL_S
            wake = next_start if len(running) < PROBE_OVERLAP else deadline
            pause = max(0.0, min(wake, deadline) - loop.time())
            if not running:
                await asyncio.sleep(pause)
                continue
            done, running = await asyncio.wait(running, timeout=pause, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                works, why = task.result()
                if works:
                    return True, ""
                next_start = min(next_start, loop.time() + PROBE_EVERY_S)
        return False, why
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
