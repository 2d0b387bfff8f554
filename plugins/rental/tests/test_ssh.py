"""The consumer's SSH pieces without a guest: its key, the pinned host key file, the ssh command line."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from omerta_rental import ssh

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHSEBynlPKdbiuOtwb4/CwY7joEKU8mm8qOSKx+Tjo5M"


def test_the_key_is_made_once_and_only_its_owner_reads_it(tmp_path: Path) -> None:
    directory = tmp_path / "plugins" / "rental"
    key = ssh.key_path(directory)
    assert key == directory / "id_ed25519" and key.stat().st_mode & 0o077 == 0
    public = ssh.public_key(directory)
    assert public.startswith("ssh-ed25519 ")
    assert ssh.key_path(directory) == key and ssh.public_key(directory) == public  # not made again
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(key)], capture_output=True, text=True, check=True)
    assert derived.stdout.split()[:2] == public.split()[:2]


def test_a_rental_pins_its_host_key_in_a_file_of_its_own(tmp_path: Path) -> None:
    known = ssh.pin(tmp_path, "r1", "198.18.255.2", HOST_KEY + " comment")
    assert known == ssh.known_hosts(tmp_path, "r1") and known.read_text() == f"198.18.255.2 {HOST_KEY}\n"
    assert ssh.pin(tmp_path, "r2", "198.18.255.2", "").read_text() == ""
    ssh.unpin(tmp_path, "r1")
    ssh.unpin(tmp_path, "r1")  # twice is fine
    assert not known.exists() and ssh.known_hosts(tmp_path, "r2").exists()


def test_ssh_runs_inside_the_gateway_with_only_this_key_and_this_host_key(tmp_path: Path) -> None:
    enter = ("nsenter", "--target", "42", "--user", "--net")
    known = tmp_path / "known"
    argv = ssh.ssh_argv(enter, tmp_path / "id_ed25519", known, "198.18.255.2", pinned=True, batch=True)
    assert argv[: len(enter) + 3] == [*enter, "ssh", "-F", "none"]
    assert argv[-1] == "omerta@198.18.255.2"
    options = {argv[i + 1] for i, a in enumerate(argv) if a == "-o"}
    assert {"IdentitiesOnly=yes", f"UserKnownHostsFile={known}", "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes", "BatchMode=yes"} <= options  # fmt: skip
    unpinned = ssh.ssh_argv((), tmp_path / "k", known, "198.18.255.2", pinned=False)
    assert "StrictHostKeyChecking=accept-new" in unpinned and "BatchMode=yes" not in unpinned


def test_the_probe_says_why_it_failed(tmp_path: Path) -> None:
    script = tmp_path / "fake"
    script.write_text("import sys; sys.stderr.write('noise\\nPermission denied (publickey).\\n'); sys.exit(255)\n")
    works, why = asyncio.run(ssh.answers([sys.executable, str(script)], 30))
    assert not works and why == "Permission denied (publickey)."
    works, why = asyncio.run(ssh.answers([sys.executable, "-c", "import time; time.sleep(30)"], 0.5))
    assert not works and "no answer within" in why


def test_overlapping_logins_stop_at_the_first_that_answers(tmp_path: Path) -> None:
    # the first attempt hangs (a guest without its address yet); a later one answers
    script = tmp_path / "fake"
    script.write_text(
        "import pathlib, sys, time\n"
        f"count = pathlib.Path({str(tmp_path / 'count')!r})\n"
        "n = int(count.read_text()) if count.exists() else 0\n"
        "count.write_text(str(n + 1))\n"
        "time.sleep(30 if n == 0 else 0)\n"
    )
    started = time.monotonic()
    works, _ = asyncio.run(ssh.first_answer([sys.executable, str(script)], 60, lambda: True))
    assert works and time.monotonic() - started < 10
    assert int((tmp_path / "count").read_text()) <= ssh.PROBE_OVERLAP


def test_a_refused_login_is_tried_again_soon_and_one_at_a_time(tmp_path: Path) -> None:
    # the guest's SSH server refuses twice (not listening yet), then answers: three attempts in turn, none at once
    script = tmp_path / "fake"
    script.write_text(
        f"cd {str(tmp_path)!r}\n"
        "mkdir busy 2>/dev/null || touch overlapped\n"
        "n=$(cat count 2>/dev/null || echo 0); echo $((n + 1)) > count\n"
        "sleep 0.3; rmdir busy\n"
        '[ "$n" = 2 ] || { echo "Connection refused" >&2; exit 255; }\n'
    )
    started = time.monotonic()
    works, _ = asyncio.run(ssh.first_answer(["sh", str(script)], 60, lambda: True))
    took = time.monotonic() - started
    assert works and (tmp_path / "count").read_text() == "3\n" and not (tmp_path / "overlapped").exists()
    assert took < 2 * ssh.PROBE_STALL_S  # each retry followed its failure, not the stall interval


def test_logins_give_up_at_the_deadline_or_when_no_longer_wanted(tmp_path: Path) -> None:
    refuse = [sys.executable, "-c", "import sys; sys.stderr.write('Connection refused\\n'); sys.exit(255)"]
    works, why = asyncio.run(ssh.first_answer(refuse, 1.5, lambda: True))
    assert not works and why == "Connection refused"
    works, _ = asyncio.run(ssh.first_answer(refuse, 60, lambda: False))
    assert not works
