"""NoCloud cloud-init seeds: one user holding only the consumer's SSH key, no password.

:func:`user_data` and :func:`meta_data` are pure; :func:`write_seed_iso` runs
``genisoimage`` and touches only the ISO path it is given and a temporary directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from omerta_vm_kvm.errors import HypervisorUnavailableError, KvmError

#: The account the consumer logs in as.
GUEST_USER = "omerta"
#: NoCloud finds its seed by this volume label.
SEED_VOLUME_ID = "cidata"


def user_data(ssh_public_key: str, ready_line: str) -> str:
    """cloud-config: the consumer's key as the only way in; the ready line on the serial console.

    JSON is a subset of YAML, so the document is written with :mod:`json` and
    no user text can break out of its field.
    """
    config = {
        "users": [
            {
                "name": GUEST_USER,
                "ssh_authorized_keys": [ssh_public_key],
                "lock_passwd": True,
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "shell": "/bin/sh",
            }
        ],
        "disable_root": True,
        "ssh_pwauth": False,
        "chpasswd": {"expire": False},
        "runcmd": [["sh", "-c", f"echo {ready_line} > /dev/ttyS0"]],
    }
    return "#cloud-config\n" + json.dumps(config, indent=1) + "\n"


def meta_data(vm_id: str) -> str:
    return json.dumps({"instance-id": vm_id, "local-hostname": f"omerta-{vm_id[:8]}"}) + "\n"


def write_seed_iso(path: Path, vm_id: str, ssh_public_key: str, ready_line: str) -> None:
    """Write the NoCloud ISO (``user-data``, ``meta-data``) to ``path``."""
    tool = shutil.which("genisoimage")
    if tool is None:
        raise HypervisorUnavailableError("genisoimage is not installed; cannot build cloud-init seeds")
    with tempfile.TemporaryDirectory(prefix="omk-seed-") as tmp:
        source = Path(tmp)
        (source / "user-data").write_text(user_data(ssh_public_key, ready_line))
        (source / "meta-data").write_text(meta_data(vm_id))
        argv = [tool, "-quiet", "-output", str(path), "-volid", SEED_VOLUME_ID, "-joliet", "-rock", str(source)]
        done = subprocess.run(argv, capture_output=True, check=False)
    if done.returncode != 0:
        raise KvmError(f"genisoimage failed: {done.stderr.decode(errors='replace').strip()}")
