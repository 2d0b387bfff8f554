"""Builds the minimal test guest: a Debian cloud kernel and a busybox initramfs.

Run as ``python -m omerta_vm_kvm.guest_builder CACHE_DIR``. The result is an image
directory (``vmlinuz``, ``initrd.img``, ``disk.qcow2``) that the ``kvm`` plugin
boots directly; its init prints :data:`READY_MARKER` and the VM id on the serial
console. With a consumer's key on the kernel command line (:data:`SSH_KEY_PARAM`)
it serves SSH with the host's dropbear (copied in with the shared libraries it
needs) to that key alone, as the account ``omerta``, and prints the ready marker
once dropbear listens; its host key is the one the provider appends to the VM's
initramfs (:mod:`omerta_vm_kvm.guest_files`). Built once and
cached: a second call with the same cache directory returns at once. Touches only
the cache directory and a temporary directory; runs ``apt-get download``,
``qemu-img``, ``ldd`` and ``cpio``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

#: The metapackage whose dependency names the current Debian cloud kernel.
KERNEL_METAPACKAGE = "linux-image-cloud-amd64"
#: Printed by the guest's init on the serial console once userspace runs.
READY_MARKER = "omerta-guest-ready"
#: Printed by the guest's DHCP hook with the lease it applied: ``ip=... mtu=... router=...``.
LEASE_MARKER = "omerta-guest-lease"
#: Kernel parameter carrying the consumer's public key as ``TYPE:BASE64`` (no spaces on a command line).
SSH_KEY_PARAM = "omerta.ssh_key"
#: TCP port on which the test guest serves a shell to whoever is on its network (its consumer).
AGENT_PORT = 7000
#: The SSH server copied from the host (Debian ``dropbear-bin``), with its libraries.
DROPBEAR = ("/usr/sbin/dropbear",)
#: The guest's accounts: ``omerta`` (the consumer's login) is root, as the test guest has no sudo.
PASSWD = "omerta:x:0:0:omerta:/home/omerta:/bin/sh\nroot:x:0:0:root:/root:/bin/sh\n"
#: Drivers the guest needs for its disk and TAP NIC (the cloud kernel builds them as modules).
GUEST_MODULES = ("virtio_pci", "virtio_net", "virtio_blk", "virtio_rng")
#: Virtual size of the blank base disk; each VM's overlay is resized to its requested disk.
BASE_DISK_SIZE = "64M"
IMAGE_FILES = ("vmlinuz", "initrd.img", "disk.qcow2")
_DEPENDS = re.compile(rb"depends=([^\0]*)\0")


class GuestBuildError(RuntimeError):
    """The test guest could not be built (no network to Debian, a tool missing)."""


#: Bumped whenever the guest's files change, so a cached older build is rebuilt.
GUEST_VERSION = "8"


def build_test_guest(cache_dir: Path, name: str = "omk-test") -> Path:
    """Return the image directory ``cache_dir/images/<name>``, building it if missing."""
    return build_image(cache_dir / "images", name)


def build_image(images_dir: Path, name: str = "omk-test") -> Path:
    """Return the image directory ``images_dir/<name>``, building the test guest there if missing."""
    image_dir = images_dir / name
    version = image_dir / "guest-version"
    if all((image_dir / f).exists() for f in IMAGE_FILES) and version.exists() and version.read_text() == GUEST_VERSION:
        return image_dir
    image_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="omk-build-", dir=image_dir.parent) as tmp:
        work = Path(tmp)
        kernel_root = _unpack_kernel(work)
        staging = work / name
        staging.mkdir()
        vmlinuz = next((kernel_root / "boot").glob("vmlinuz-*"))
        shutil.copyfile(vmlinuz, staging / "vmlinuz")
        modules_dir = next((kernel_root / "lib" / "modules").iterdir())
        (staging / "initrd.img").write_bytes(_initramfs(modules_dir))
        _run(["qemu-img", "create", "-q", "-f", "qcow2", str(staging / "disk.qcow2"), BASE_DISK_SIZE])
        (staging / "guest-version").write_text(GUEST_VERSION)
        for path in staging.iterdir():
            path.chmod(0o444)
        if image_dir.exists():
            shutil.rmtree(image_dir)
        staging.rename(image_dir)
    return image_dir


def _unpack_kernel(work: Path) -> Path:
    depends = _run(["apt-cache", "depends", KERNEL_METAPACKAGE]).decode()
    found = re.search(r"Depends: (linux-image-\S+)", depends)
    if found is None:
        raise GuestBuildError(f"apt-cache names no kernel for {KERNEL_METAPACKAGE}; run apt-get update")
    _run(["apt-get", "download", "-q", found.group(1)], cwd=work)
    deb = next(work.glob("linux-image-*.deb"))
    root = work / "kernel"
    _run(["dpkg-deb", "-x", str(deb), str(root)])
    deb.unlink()
    return root


def _module_order(modules_dir: Path, wanted: tuple[str, ...]) -> list[Path]:
    """The ``.ko`` files for ``wanted`` and their dependencies, dependencies first."""
    by_name = {p.name.removesuffix(".ko").replace("-", "_"): p for p in modules_dir.rglob("*.ko")}
    order: list[Path] = []

    def visit(name: str) -> None:
        path = by_name.get(name)
        if path is None:
            raise GuestBuildError(f"kernel module {name} not found in {modules_dir}")
        if path in order:
            return
        found = _DEPENDS.search(path.read_bytes())
        for dep in found.group(1).decode().split(",") if found else []:
            if dep:
                visit(dep.replace("-", "_"))
        order.append(path)

    for module in wanted:
        visit(module)
    return order


def _initramfs(modules_dir: Path) -> bytes:
    with tempfile.TemporaryDirectory(prefix="omk-initramfs-") as tmp:
        root = Path(tmp)
        for sub in ("bin", "dev", "proc", "sys", "lib/modules", "etc", "root", "home/omerta"):
            (root / sub).mkdir(parents=True)
        shutil.copyfile(shutil.which("busybox") or "/bin/busybox", root / "bin" / "busybox")
        (root / "bin" / "busybox").chmod(0o755)
        for program in DROPBEAR:
            _copy_with_libraries(Path(program), root)
        (root / "etc" / "passwd").write_text(PASSWD)
        (root / "etc" / "group").write_text("root:x:0:\n")
        (root / "etc" / "shells").write_text("/bin/sh\n")
        names = []
        for module in _module_order(modules_dir, GUEST_MODULES):
            shutil.copyfile(module, root / "lib" / "modules" / module.name)
            names.append(module.name)
        (root / "lib" / "modules" / "order").write_text("\n".join(names) + "\n")
        guest = resources.files("omerta_vm_kvm.guest")
        init = guest.joinpath("init.sh").read_text()
        (root / "init").write_text(
            init.replace("@READY_MARKER@", READY_MARKER)
            .replace("@AGENT_PORT@", str(AGENT_PORT))
            .replace("@SSH_KEY_PARAM@", SSH_KEY_PARAM)
        )
        (root / "init").chmod(0o755)
        hook = guest.joinpath("udhcpc-script.sh").read_text()
        (root / "bin" / "udhcpc-script").write_text(hook.replace("omerta-guest-lease", LEASE_MARKER))
        (root / "bin" / "udhcpc-script").chmod(0o755)
        listing = "\n".join(sorted(str(p.relative_to(root)) for p in root.rglob("*"))) + "\n"
        archive = _run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=root, stdin=listing.encode())
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
        gz.write(archive)
    return buffer.getvalue()


def _copy_with_libraries(program: Path, root: Path) -> None:
    """Copy ``program`` and every shared library ``ldd`` names for it to the same paths under ``root``."""
    if not program.is_file():
        raise GuestBuildError(
            f"{program} is not installed (apt-get install dropbear-bin; see scripts/system-packages.txt)"
        )
    listing = _run(["ldd", str(program)]).decode()
    paths = [Path(p) for p in re.findall(r"(?:=>\s*|^\s*)(/\S+)", listing, re.MULTILINE)]
    for path in [program, *paths]:
        target = root / path.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)  # follows the library's symlink: the guest gets the file under its soname
        target.chmod(0o755)


def _run(argv: list[str], cwd: Path | None = None, stdin: bytes | None = None) -> bytes:
    if shutil.which(argv[0]) is None:
        raise GuestBuildError(f"{argv[0]} is not installed (see scripts/system-packages.txt)")
    env = {**os.environ, "LC_ALL": "C"}
    done = subprocess.run(argv, cwd=cwd, input=stdin, capture_output=True, env=env, check=False)
    if done.returncode != 0:
        raise GuestBuildError(f"{' '.join(argv)} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache_dir", type=Path, help="where images/<name>/ is built and cached")
    parser.add_argument("--name", default="omk-test", help="image name [default: omk-test]")
    args = parser.parse_args(argv)
    try:
        print(build_test_guest(args.cache_dir, args.name))
    except GuestBuildError as exc:
        print(f"guest_builder: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
