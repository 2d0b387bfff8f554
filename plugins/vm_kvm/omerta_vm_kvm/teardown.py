"""Deleting one recorded artefact, whatever its kind; a missing artefact is already deleted.

Blocking (run it in a thread). Touches exactly the domain, link, namespace,
file or directory the artefact names.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from omerta_vm_kvm import libvirt_host, network
from omerta_vm_kvm.registry import Artefact


def delete_artefact(conn: Any, artefact: Artefact) -> None:
    if artefact.kind == "domain":
        libvirt_host.destroy_domain(conn, artefact.name)
    elif artefact.kind == "tap":
        network.delete_tap(artefact.name)
    elif artefact.kind == "netns":
        network.delete_namespace(artefact.name)
    elif artefact.kind == "file":
        Path(artefact.name).unlink(missing_ok=True)
    elif artefact.kind == "dir":
        if Path(artefact.name).exists():
            shutil.rmtree(artefact.name)
    else:
        raise ValueError(f"unknown artefact kind {artefact.kind!r}")


def artefact_exists(conn: Any, artefact: Artefact) -> bool:
    if artefact.kind == "domain":
        return artefact.name in libvirt_host.domain_names(conn)
    if artefact.kind == "tap":
        return network.link_exists(artefact.name)
    if artefact.kind == "netns":
        return network.namespace_exists(artefact.name)
    return Path(artefact.name).exists()
