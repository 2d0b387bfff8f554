"""Offers: what a provider rents out, as published in its signed discovery record, and how to pick one.

An offer is one entry (``"offer"``) of the provider's advertised capabilities; the discovery
record carrying it is signed by the provider, so an offer read from a peer record is the
provider's own word. Records hold at most 512 bytes of capabilities, so the encoding is compact.
Pure data; touches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from omerta_core.errors import OmertaError
from omerta_core.interfaces.common import PeerId

#: The capability key under which a provider publishes its offer.
CAPABILITY = "offer"
#: Offer encoding version.
VERSION = 1
#: At most this many image names are published (the record's capabilities are bounded).
MAX_IMAGES = 8
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")


class OfferError(OmertaError, ValueError):
    """A malformed offer (from a peer record or from this node's settings)."""


@dataclass(frozen=True)
class Offer:
    """One provider's terms and what it can still host."""

    vcpus: int
    memory_mib: int
    disk_gib: int
    images: tuple[str, ...]
    price_per_hour: int
    max_lease_h: int
    region: str
    free_vcpus: int
    free_memory_mib: int

    def encode(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "cpu": self.vcpus,
            "mem": self.memory_mib,
            "disk": self.disk_gib,
            "img": list(self.images),
            "price": self.price_per_hour,
            "max_h": self.max_lease_h,
            "region": self.region,
            "free_cpu": self.free_vcpus,
            "free_mem": self.free_memory_mib,
        }

    @classmethod
    def decode(cls, data: Any) -> Offer:
        if not isinstance(data, dict) or data.get("v") != VERSION:
            raise OfferError("not a version 1 offer")
        images = data.get("img")
        if not isinstance(images, list) or len(images) > MAX_IMAGES:
            raise OfferError("offer images must be a list of at most 8 names")
        for image in images:
            if not isinstance(image, str) or not _WORD.fullmatch(image):
                raise OfferError(f"offer image {image!r} is not a plain name")
        region = data.get("region")
        if not isinstance(region, str) or len(region) > 40:
            raise OfferError("offer region must be a short label")
        numbers = {}
        for key in ("cpu", "mem", "disk", "price", "max_h", "free_cpu", "free_mem"):
            value = data.get(key)
            if type(value) is not int or not 0 <= value < 2**40:
                raise OfferError(f"offer field {key!r} must be a non-negative integer")
            numbers[key] = value
        return cls(
            vcpus=numbers["cpu"],
            memory_mib=numbers["mem"],
            disk_gib=numbers["disk"],
            images=tuple(images),
            price_per_hour=numbers["price"],
            max_lease_h=numbers["max_h"],
            region=region,
            free_vcpus=numbers["free_cpu"],
            free_memory_mib=numbers["free_mem"],
        )


@dataclass(frozen=True)
class Want:
    """What a consumer asks for; ``None`` fields match anything."""

    vcpus: int | None = None
    memory_mib: int | None = None
    image: str | None = None
    max_price: int | None = None
    lease_s: int | None = None

    def why_not(self, offer: Offer) -> str | None:
        """``None`` when ``offer`` fits, else one line why not."""
        if self.vcpus is not None and self.vcpus > min(offer.vcpus, offer.free_vcpus):
            return f"offers {min(offer.vcpus, offer.free_vcpus)} free vCPUs, not {self.vcpus}"
        if self.memory_mib is not None and self.memory_mib > min(offer.memory_mib, offer.free_memory_mib):
            return f"offers {min(offer.memory_mib, offer.free_memory_mib)} MiB free, not {self.memory_mib}"
        if self.image is not None and self.image not in offer.images:
            return f"has no image {self.image!r} (has: {', '.join(offer.images) or 'none'})"
        if self.max_price is not None and offer.price_per_hour > self.max_price:
            return f"costs {offer.price_per_hour}/h, above {self.max_price}"
        if self.lease_s is not None and self.lease_s > offer.max_lease_h * 3600:
            return f"leases at most {offer.max_lease_h} h"
        return None


@dataclass(frozen=True)
class SeenOffer:
    provider: PeerId
    offer: Offer

    def as_json(self) -> dict[str, Any]:
        return {"provider": str(self.provider), **self.offer.encode()}


def remaining(offer: Offer, used: Iterable[tuple[int, int]]) -> Offer:
    """``offer`` with its free capacity reduced by the (vCPUs, MiB) of the leases it holds."""
    taken = list(used)
    return replace(
        offer,
        free_vcpus=max(0, offer.vcpus - sum(cpu for cpu, _ in taken)),
        free_memory_mib=max(0, offer.memory_mib - sum(mem for _, mem in taken)),
    )


def matching(seen: Iterable[SeenOffer], want: Want) -> list[SeenOffer]:
    """The offers that fit ``want``, cheapest first (ties: most free memory, then provider id)."""
    fits = [s for s in seen if want.why_not(s.offer) is None]
    return sorted(fits, key=lambda s: (s.offer.price_per_hour, -s.offer.free_memory_mib, str(s.provider)))
