"""NoCloud cloud-init seeds: one user holding only the consumer's SSH key, no password; DHCPv4 only;
the guest's SSH host key made by the provider, so the consumer can pin it before the guest boots.

:func:`user_data`, :func:`meta_data` and :func:`network_config` are pure; :func:`host_key_pair` runs
``ssh-keygen`` in a temporary directory; :func:`write_seed_iso` runs ``genisoimage`` and touches only
the ISO path it is given and a temporary directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from omerta_vm_kvm.errors import HypervisorUnavailableError, KvmError

#: The account the consumer logs in as.
GUEST_USER = "omerta"
#: NoCloud finds its seed by this volume label.
SEED_VOLUME_ID = "cidata"


@dataclass(frozen=True)
class HostKey:
    """An ed25519 SSH host key for one guest: OpenSSH private key text and public line (``TYPE BASE64``)."""

    private: str
    public: str


def host_key_pair() -> HostKey:
    """A fresh ed25519 host key (``ssh-keygen``; Debian ``openssh-client``)."""
    tool = shutil.which("ssh-keygen")
    if tool is None:
        raise HypervisorUnavailableError("ssh-keygen is not installed (apt-get install openssh-client)")
    with tempfile.TemporaryDirectory(prefix="omk-hostkey-") as tmp:
        path = Path(tmp) / "host"
        done = subprocess.run([tool, "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)],
                              capture_output=True, check=False)  # fmt: skip
        if done.returncode != 0:
            raise KvmError(f"ssh-keygen failed: {done.stderr.decode(errors='replace').strip()}")
        public = " ".join(path.with_suffix(".pub").read_text().split()[:2])
        return HostKey(path.read_text(), public)


def user_data(ssh_public_key: str, ready_line: str, host_key: HostKey | None = None) -> str:
    """cloud-config: the consumer's key as the only way in; the ready line on the serial console; the
    provider's ``host_key`` as the guest's only SSH host key.

    JSON is a subset of YAML, so the document is written with :mod:`json` and
    no user text can break out of its field.
    """
    keys: dict[str, object] = {}
    if host_key is not None:
        keys = {"ssh_keys": {"ed25519_private": host_key.private, "ed25519_public": host_key.public},
                "ssh_genkeytypes": [], "ssh_deletekeys": True}  # fmt: skip
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
        **keys,
    }
    return "#cloud-config\n" + json.dumps(config, indent=1) + "\n"


def network_config(mac: str) -> str:
    """NoCloud network-config (v2): DHCPv4 on the one NIC, and nothing else.

    The address, default route, DNS and MTU all come from the consumer's gateway (through the VPN);
    no DHCPv6 and no router advertisements, so the VPN is the guest's only route.
    """
    config = {
        "version": 2,
        "ethernets": {
            "vpn": {
                "match": {"macaddress": mac},
                "set-name": "eth0",
                "dhcp4": True,
                "dhcp4-overrides": {"use-mtu": True},
                "dhcp6": False,
                "accept-ra": False,
                "link-local": [],
            }
        },
    }
    return json.dumps(config, indent=1) + "\n"


def meta_data(vm_id: str) -> str:
    return json.dumps({"instance-id": vm_id, "local-hostname": f"omerta-{vm_id[:8]}"}) + "\n"


def write_seed_iso(path: Path, vm_id: str, ssh_public_key: str, ready_line: str, mac: str,
                   host_key: HostKey | None = None) -> None:  # fmt: skip
    """Write the NoCloud ISO (``user-data``, ``meta-data``, ``network-config``) to ``path``, readable by its owner."""
    tool = shutil.which("genisoimage")
    if tool is None:
        raise HypervisorUnavailableError("genisoimage is not installed; cannot build cloud-init seeds")
    with tempfile.TemporaryDirectory(prefix="omk-seed-") as tmp:
        source = Path(tmp)
        (source / "user-data").write_text(user_data(ssh_public_key, ready_line, host_key))
        (source / "meta-data").write_text(meta_data(vm_id))
        (source / "network-config").write_text(network_config(mac))
        argv = [tool, "-quiet", "-output", str(path), "-volid", SEED_VOLUME_ID, "-joliet", "-rock", str(source)]
        done = subprocess.run(argv, capture_output=True, check=False)
    if done.returncode != 0:
        raise KvmError(f"genisoimage failed: {done.stderr.decode(errors='replace').strip()}")
    path.chmod(0o600)  # it holds the guest's private host key
