"""What a newcomer meets in ``omerta vm``: Ctrl-C during create, progress, readable times, id prefixes, image build.

The Ctrl-C case sends a real SIGINT to a real ``omerta vm create`` while the
real guest boots under a real node; the VM must be rolled back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from omerta_vm_kvm.cli import readable_time

from .test_vms import leftovers, steps_of, wait_until_gone

pytestmark = [pytest.mark.root, pytest.mark.slow]


def omerta_process(state_dir: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMERTA_")}
    argv = [sys.executable, "-m", "omerta_core", *args, "--state-dir", str(state_dir)]
    # as from a terminal: a runner started in the background (``cmd &`` without job control) ignores SIGINT and
    # its children inherit that, so the Ctrl-C test's signal would do nothing; a handled SIGINT is not inherited
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    finally:
        signal.signal(signal.SIGINT, previous)


def omerta(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = omerta_process(state_dir, *args)
    out, err = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_ctrl_c_during_vm_create_rolls_the_vm_back(node: Any) -> None:
    events = node.state_dir / "plugins" / "kvm" / "lifecycle.jsonl"
    create = omerta_process(node.state_dir, "vm", "create", "--image", "omk-test", "--memory", "128", "--disk", "1")
    try:
        deadline = time.monotonic() + 120
        while not (events.exists() and '"step": "boot"' in events.read_text()):
            assert create.poll() is None, create.communicate()
            assert time.monotonic() < deadline, "the VM never started booting"
            time.sleep(0.05)
        vm_id = json.loads(events.read_text().splitlines()[0])["vm_id"]
        create.send_signal(signal.SIGINT)
        out, err = create.communicate(timeout=60)
    finally:
        if create.poll() is None:
            create.kill()
            create.wait()
    assert create.returncode == 130
    assert out == ""
    lines = err.strip().splitlines()
    assert lines[-1] == "Error: interrupted: the node is deleting the VM it was creating"
    assert any("creating VM: " in line and "booting" in line for line in lines[:-1]), err
    assert wait_until_gone(node.state_dir, [vm_id], timeout=120) == []
    deadline = time.monotonic() + 60
    while node.call("vm.list"):
        assert time.monotonic() < deadline, node.call("vm.list")
        time.sleep(0.2)
    steps = steps_of(node.state_dir, vm_id)
    assert "ready" not in steps and {"failed", "delete"} <= set(steps)


def test_create_shows_progress_then_show_renew_and_destroy_take_prefixes(node: Any) -> None:
    created = omerta(node.state_dir, "vm", "create", "--image", "omk-test", "--memory", "128", "--disk", "1")
    assert created.returncode == 0, created.stderr
    vm_id = created.stdout.strip()
    assert len(vm_id) == 32
    assert "creating VM: " in created.stderr and "booting" in created.stderr
    prefix = vm_id[:6]
    shown = omerta(node.state_dir, "vm", "inspect", prefix)
    assert shown.returncode == 0, shown.stderr
    expires = next(line for line in shown.stdout.splitlines() if line.startswith("expires_at"))
    assert "(in " in expires and " min)" in expires
    created_at = next(line for line in shown.stdout.splitlines() if line.startswith("created_at"))
    assert " ago)" in created_at
    before = node.call("vm.show", {"vm_id": vm_id})["expires_at"]
    renewed = omerta(node.state_dir, "vm", "renew", prefix, "7200", "--json")
    assert renewed.returncode == 0, renewed.stderr
    assert json.loads(renewed.stdout)["expires_at"] > before
    destroyed = omerta(node.state_dir, "vm", "destroy", prefix)
    assert destroyed.stdout.strip() == f"deleted {vm_id}"
    assert leftovers(node.state_dir, vm_id) == []
    missing = omerta(node.state_dir, "vm", "inspect", prefix)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"Error: no VM id starts with '{prefix}'"


def test_readable_times() -> None:
    assert readable_time(1000.0 + 3600, 1000.0).endswith("(in 60 min)")
    assert readable_time(1000.0 - 5, 1000.0).endswith("(5 s ago)")
    assert readable_time(1000.0 + 3 * 3600, 1000.0).endswith("(in 3.0 h)")


def test_vm_image_build_uses_the_builder_and_its_cache(images_dir: Path, tmp_path: Path) -> None:
    image = images_dir / "omk-test"
    before = {p.name: p.stat().st_mtime_ns for p in image.iterdir()}
    built = omerta(tmp_path / "state", "vm", "image", "build", "--images-dir", str(images_dir), "--json")
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout) == {"name": "omk-test", "path": str(image)}
    assert {p.name: p.stat().st_mtime_ns for p in image.iterdir()} == before
