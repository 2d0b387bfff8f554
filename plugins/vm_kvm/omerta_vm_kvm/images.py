"""The provider's base images: a directory per image name.

An image directory holds ``disk.qcow2`` (the read-only base every VM's overlay
backs onto) and, for minimal images booted directly, ``vmlinuz`` and
``initrd.img``. Images without a kernel are cloud images: they boot from the
disk and get a NoCloud seed. Touches only the images directory (reads).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from omerta_vm_kvm.errors import ImageNotFoundError

#: Image names are plain words so that a request can never name a path outside the directory.
IMAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class BaseImage:
    name: str
    disk: Path
    kernel: Path | None = None
    initrd: Path | None = None

    @property
    def boots_directly(self) -> bool:
        return self.kernel is not None


def resolve_image(images_dir: Path, name: str) -> BaseImage:
    """The image called ``name``, or :class:`ImageNotFoundError`."""
    if not IMAGE_NAME.match(name):
        raise ImageNotFoundError(f"image name {name[:64]!r} is not a plain image name")
    directory = images_dir / name
    disk = directory / "disk.qcow2"
    if not disk.is_file():
        raise ImageNotFoundError(f"no image {name!r} on this provider (looked for {disk})")
    kernel, initrd = directory / "vmlinuz", directory / "initrd.img"
    if kernel.is_file() and initrd.is_file():
        return BaseImage(name, disk, kernel, initrd)
    return BaseImage(name, disk)


def list_images(images_dir: Path) -> list[str]:
    if not images_dir.is_dir():
        return []
    return sorted(p.name for p in images_dir.iterdir() if (p / "disk.qcow2").is_file() and IMAGE_NAME.match(p.name))
