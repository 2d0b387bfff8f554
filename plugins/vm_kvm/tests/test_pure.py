"""Admission, SSH key validation, domain XML, cloud-init seed and registry: no VMs involved."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import gzip
import json
import struct
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from omerta_vm_kvm.admission import Limits, Usage, admit
from omerta_vm_kvm.domain_xml import RNG_BYTES_PER_SECOND, DomainSpec, domain_xml
from omerta_vm_kvm.errors import AdmissionError, ImageNotFoundError, InvalidSshKeyError, RegistryDamagedError
from omerta_vm_kvm.guest_files import HOST_KEY_PATH, dropbear_host_key, newc_archive, write_vm_initrd
from omerta_vm_kvm.images import resolve_image
from omerta_vm_kvm.registry import REGISTRY_FILE, Artefact, Registry, VmRow
from omerta_vm_kvm.seed import host_key_pair, meta_data, network_config, user_data, write_seed_iso
from omerta_vm_kvm.service import kernel_cmdline
from omerta_vm_kvm.settings import parse_settings
from omerta_vm_kvm.ssh_keys import validate_ssh_public_key

from omerta_core.errors import ConfigError
from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.hypervisor import VmRequest, VmState

CONSUMER = PeerId.from_public_key(bytes(range(32)))
LIMITS = Limits(
    max_vms=2, max_vcpus_per_vm=2, max_memory_mib_per_vm=1024, max_disk_gib_per_vm=8, total_memory_mib=1536,
    max_lease_s=600,
)  # fmt: skip


def ed25519_key(comment: str = "alice@laptop") -> str:
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + bytes(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def request(**kw: object) -> VmRequest:
    return VmRequest(consumer=CONSUMER, image="omk-test", **{"lease_seconds": 60, **kw})  # type: ignore[arg-type]


def test_admission_accepts_a_request_within_limits() -> None:
    admit(request(vcpus=2, memory_mib=1024, disk_gib=8, lease_seconds=600), LIMITS, Usage(vms=1, memory_mib=512))


@pytest.mark.parametrize(
    ("kwargs", "usage", "words"),
    [
        ({"memory_mib": 4096}, Usage(), "memory must be"),
        ({"memory_mib": 16}, Usage(), "memory must be"),
        ({"vcpus": 3}, Usage(), "vcpus must be"),
        ({"disk_gib": 9}, Usage(), "disk must be"),
        ({"lease_seconds": 601}, Usage(), "lease must be"),
        ({}, Usage(vms=2, memory_mib=256), "maximum of 2 VMs"),
        ({"memory_mib": 1024}, Usage(vms=1, memory_mib=1024), "512 MiB of memory is free"),
    ],
)
def test_admission_names_the_broken_limit(kwargs: dict[str, int], usage: Usage, words: str) -> None:
    with pytest.raises(AdmissionError, match=words):
        admit(request(**kwargs), LIMITS, usage)


def test_a_valid_ssh_key_is_normalised_to_one_line() -> None:
    key = ed25519_key()
    assert validate_ssh_public_key("  " + key.replace(" ", "   ") + "\n") == key


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ssh-ed25519",
        "ssh-ed25519 not*base64",
        "ssh-dss AAAAB3NzaC1kc3M=",
        ed25519_key().replace("ssh-ed25519 ", "ssh-rsa ", 1),
        ed25519_key() + "\nssh-ed25519 AAAA",
        "ssh-ed25519 AAAA",
    ],
)
def test_malformed_ssh_keys_are_refused(text: str) -> None:
    with pytest.raises(InvalidSshKeyError):
        validate_ssh_public_key(text)


@given(st.text(max_size=200))
def test_ssh_key_validation_never_fails_with_another_error(text: str) -> None:
    with contextlib.suppress(InvalidSshKeyError):
        validate_ssh_public_key(text)


def test_image_names_cannot_leave_the_images_directory(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "disk.qcow2").write_bytes(b"")
    images = tmp_path / "images"
    images.mkdir()
    for name in ("../outside", "/etc", "", "a/b"):
        with pytest.raises(ImageNotFoundError):
            resolve_image(images, name)
    with pytest.raises(ImageNotFoundError, match="no image 'missing'"):
        resolve_image(images, "missing")


def test_domain_xml_has_the_limits_the_overlay_the_tap_and_the_serial_log(tmp_path: Path) -> None:
    spec = DomainSpec(
        name="omk-x", uuid="12345678-1234-1234-1234-123456789abc", domain_type="qemu", vcpus=2, memory_mib=256,
        console_log=tmp_path / "c.log", overlay=tmp_path / "d.qcow2", tap="omkx", mac="52:54:00:aa:bb:cc",
        kernel=tmp_path / "vmlinuz", initrd=tmp_path / "initrd.img", cmdline="console=ttyS0",
    )  # fmt: skip
    root = ET.fromstring(domain_xml(spec))
    assert root.get("type") == "qemu"
    assert root.findtext("memory") == "256" and root.find("memory").get("unit") == "MiB"  # type: ignore[union-attr]
    assert root.findtext("vcpu") == "2"
    assert root.find("devices/disk/source").get("file") == str(tmp_path / "d.qcow2")  # type: ignore[union-attr]
    assert root.find("devices/interface/target").get("dev") == "omkx"  # type: ignore[union-attr]
    assert root.find("devices/serial/source").get("path") == str(tmp_path / "c.log")  # type: ignore[union-attr]
    assert root.findtext("os/cmdline") == "console=ttyS0"
    assert root.find("cpu") is None  # host-passthrough only under kvm
    # the NIC offloads TCP segmentation and checksums both ways, nothing else
    for side in ("host", "guest"):
        offloads = root.find(f"devices/interface/driver/{side}").attrib  # type: ignore[union-attr]
        assert {k for k, v in offloads.items() if v == "on"} == {"csum", "tso4", "tso6", "ecn"}
    plain = ET.fromstring(domain_xml(dataclasses.replace(spec, nic_offloads=False)))
    assert set(plain.find("devices/interface/driver/host").attrib.values()) == {"off"}  # type: ignore[union-attr]
    assert set(plain.find("devices/interface/driver/guest").attrib.values()) == {"off"}  # type: ignore[union-attr]


def test_every_guest_gets_a_rate_limited_virtio_rng_fed_from_host_urandom(tmp_path: Path) -> None:
    direct = DomainSpec(
        name="omk-x", uuid="12345678-1234-1234-1234-123456789abc", domain_type="qemu", vcpus=1, memory_mib=128,
        console_log=tmp_path / "c.log", kernel=tmp_path / "vmlinuz", initrd=tmp_path / "initrd.img",
    )  # fmt: skip
    cloud = dataclasses.replace(direct, kernel=None, initrd=None, overlay=tmp_path / "d.qcow2", domain_type="kvm")
    for spec in (direct, cloud):
        (rng,) = ET.fromstring(domain_xml(spec)).findall("devices/rng")
        assert rng.get("model") == "virtio"
        backend = rng.find("backend")
        assert backend is not None and backend.get("model") == "random" and backend.text == "/dev/urandom"
        assert rng.find("rate").attrib == {"bytes": str(RNG_BYTES_PER_SECOND), "period": "1000"}  # type: ignore[union-attr]
    assert 32 <= RNG_BYTES_PER_SECOND <= 1 << 20  # enough to seed a CRNG at once, too little to spin the host


def test_nic_offloads_is_a_switch(tmp_path: Path) -> None:
    assert parse_settings({}, tmp_path).nic_offloads is True
    assert parse_settings({"nic_offloads": False}, tmp_path).nic_offloads is False
    with pytest.raises(ConfigError, match="nic_offloads must be true or false"):
        parse_settings({"nic_offloads": "yes"}, tmp_path)


def test_cloud_init_seed_holds_only_the_consumers_key_and_no_password(tmp_path: Path) -> None:
    key = ed25519_key()
    document = user_data(key, "omerta-guest-ready vm=x")
    assert document.startswith("#cloud-config\n")
    config = json.loads(document.split("\n", 1)[1])
    (user,) = config["users"]
    assert user["ssh_authorized_keys"] == [key]
    assert user["lock_passwd"] is True and "passwd" not in user and "plain_text_passwd" not in user
    assert config["ssh_pwauth"] is False
    assert json.loads(meta_data("abc"))["instance-id"] == "abc"
    iso = tmp_path / "seed.iso"
    write_seed_iso(iso, "abc", key, "omerta-guest-ready vm=abc", "52:54:00:ab:c0:00")
    listing = subprocess.run(["isoinfo", "-R", "-l", "-i", str(iso)], capture_output=True, check=True).stdout
    assert b"user-data" in listing and b"meta-data" in listing and b"network-config" in listing
    (nic,) = json.loads(network_config("52:54:00:ab:c0:00"))["ethernets"].values()
    assert nic["match"] == {"macaddress": "52:54:00:ab:c0:00"} and nic["dhcp4"] is True
    assert nic["dhcp6"] is False and nic["accept-ra"] is False and nic["dhcp4-overrides"]["use-mtu"] is True
    volume = subprocess.run(["isoinfo", "-d", "-i", str(iso)], capture_output=True, check=True).stdout
    assert b"Volume id: cidata" in volume


def test_a_cloud_guest_gets_the_providers_host_key_and_no_other() -> None:
    host_key = host_key_pair()
    assert host_key.public.startswith("ssh-ed25519 ") and len(host_key.public.split()) == 2
    assert "OPENSSH PRIVATE KEY" in host_key.private
    config = json.loads(user_data(ed25519_key(), "ready", host_key).split("\n", 1)[1])
    assert config["ssh_keys"] == {"ed25519_private": host_key.private, "ed25519_public": host_key.public}
    assert config["ssh_genkeytypes"] == [] and config["ssh_deletekeys"] is True
    assert "ssh_keys" not in json.loads(user_data(ed25519_key(), "ready").split("\n", 1)[1])


def test_the_test_guest_gets_the_consumers_key_on_its_command_line() -> None:
    key = ed25519_key()
    key_type, blob, _ = key.split()
    assert kernel_cmdline("v1", key).split()[-2:] == ["omerta.vm=v1", f"omerta.ssh_key={key_type}:{blob}"]
    assert "ssh_key" not in kernel_cmdline("v1", None)


def test_the_providers_host_key_for_a_direct_boot_guest_is_one_dropbear_reads(tmp_path: Path) -> None:
    key = dropbear_host_key()
    assert key.public.startswith("ssh-ed25519 ") and key != dropbear_host_key()
    (tmp_path / "host_key").write_bytes(key.private)
    (tmp_path / "host_key").chmod(0o600)
    derived = subprocess.run(["dropbearkey", "-y", "-f", str(tmp_path / "host_key")], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
    assert key.public in derived.splitlines()[1]
    assert dropbear_host_key(bytes(32)) == dropbear_host_key(bytes(32))


def test_a_direct_boot_guests_own_initrd_is_the_images_with_its_host_key_appended(tmp_path: Path) -> None:
    base, target, key = tmp_path / "initrd.img", tmp_path / "vm-initrd.img", dropbear_host_key()
    base.write_bytes(b"the image's own initramfs")
    write_vm_initrd(base, target, key)
    assert target.stat().st_mode & 0o777 == 0o600
    data = target.read_bytes()
    assert data.startswith(base.read_bytes())
    archive = gzip.decompress(data[len(base.read_bytes()) :])
    assert archive == newc_archive({HOST_KEY_PATH: (0o600, key.private)})
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    listing = subprocess.run(["cpio", "-idv", "--no-absolute-filenames"], input=archive, cwd=unpacked,
                             capture_output=True, check=True).stderr.decode()  # fmt: skip
    assert listing.split()[:3] == ["etc", "etc/dropbear", "etc/dropbear/host_key"]
    assert (unpacked / HOST_KEY_PATH).read_bytes() == key.private
    assert (unpacked / HOST_KEY_PATH).stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):  # never over a file already there
        write_vm_initrd(base, target, key)


def test_registry_returns_artefacts_newest_first_and_keeps_vms_with_artefacts(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    row = VmRow("v1", CONSUMER, "img", 1, 128, 1, VmState.CREATING, 1.0, 2.0, None, None, "inc")
    registry.add_vm(row)
    first, second = Artefact("v1", "dir", "/x"), Artefact("v1", "netns", "omk-v1")
    registry.record(first)
    registry.record(second)
    assert registry.artefacts("v1") == [second, first]
    registry.remove_vm("v1")
    assert registry.vm("v1") is not None  # refused: artefacts remain
    registry.forget(second)
    registry.forget(first)
    registry.remove_vm("v1")
    assert registry.vm("v1") is None
    registry.close()
    assert Registry(tmp_path).vms() == []


@given(st.binary(min_size=1, max_size=4096))
def test_damaged_registry_file_is_a_registry_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / REGISTRY_FILE).write_bytes(data)
        with contextlib.suppress(RegistryDamagedError):
            Registry(Path(directory)).close()


def test_registry_row_it_cannot_read_is_a_registry_error(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    registry.add_vm(VmRow("v1", CONSUMER, "img", 1, 128, 1, VmState.CREATING, 1.0, 2.0, None, None, "inc"))
    registry._db.execute("UPDATE vms SET state = 'teleported'")
    with pytest.raises(RegistryDamagedError, match="cannot read"):
        registry.vms()
    registry.close()
