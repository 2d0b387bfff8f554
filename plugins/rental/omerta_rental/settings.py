"""The rental plugin's settings (``[plugins.rental]``): the offer, admission policy and timers.

Pure parsing (the ``timezone`` name is looked up in the system's time zone database); touches nothing.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from typing import Any

from omerta_core.errors import OmertaError
from omerta_rental.admission import Policy
from omerta_rental.core import Timing

CONFIG_DEFAULTS: dict[str, Any] = {
    "images": [],
    "vcpus": 2,
    "memory_mib": 1024,
    "disk_gib": 4,
    "price_per_hour": 100,
    "max_lease_h": 24,
    "region": "unknown",
    "owners": [],
    "trusted_networks": [],
    "blocklist": [],
    "admit_others": True,
    "max_per_consumer": 1,
    "max_total": 4,
    "min_trust": 0.0,
    "quiet_hours": [],
    "timezone": "",
    "heartbeat_s": Timing.heartbeat_s,
    "grace_s": Timing.grace_s,
    "ready_timeout_s": Timing.ready_timeout_s,
    "abandon_timeout_s": Timing.abandon_timeout_s,
    "sync_timeout_s": 10.0,
}


class SettingsError(OmertaError, ValueError):
    """A bad ``[plugins.rental]`` setting."""


@dataclass(frozen=True)
class Settings:
    images: tuple[str, ...]
    vcpus: int
    memory_mib: int
    disk_gib: int
    price_per_hour: int
    max_lease_h: int
    region: str
    policy: Policy
    timing: Timing
    sync_timeout_s: float
    #: The provider's clock for quiet hours: an IANA zone, ``None`` for the host's local time.
    timezone: zoneinfo.ZoneInfo | None = None


def _names(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SettingsError(f"plugins.rental.{key} must be a list of names")
    return tuple(v.strip() for v in value)


def _zone(name: Any) -> zoneinfo.ZoneInfo | None:
    if not isinstance(name, str):
        raise SettingsError('plugins.rental.timezone must be a time zone name such as "Europe/Berlin"')
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(
            f'plugins.rental.timezone: no time zone named {name!r} (e.g. "UTC", "Europe/Berlin")'
        ) from exc


def parse_settings(config: dict[str, Any]) -> Settings:
    merged = {**CONFIG_DEFAULTS, **config}
    quiet = merged["quiet_hours"]
    if quiet and (
        not isinstance(quiet, list) or len(quiet) != 2 or not all(type(h) is int and 0 <= h < 24 for h in quiet)
    ):
        raise SettingsError("plugins.rental.quiet_hours must be [start_hour, end_hour] or []")
    try:
        policy = Policy(
            owners=frozenset(_names(merged["owners"], "owners")),
            trusted_networks=frozenset(_names(merged["trusted_networks"], "trusted_networks")),
            blocklist=frozenset(_names(merged["blocklist"], "blocklist")),
            admit_others=bool(merged["admit_others"]),
            max_per_consumer=int(merged["max_per_consumer"]),
            max_total=int(merged["max_total"]),
            min_trust=float(merged["min_trust"]),
            quiet_hours=(quiet[0], quiet[1]) if quiet else None,
        )
        timing = Timing(
            heartbeat_s=float(merged["heartbeat_s"]),
            grace_s=float(merged["grace_s"]),
            ready_timeout_s=float(merged["ready_timeout_s"]),
            abandon_timeout_s=float(merged["abandon_timeout_s"]),
            claim_retry_s=min(Timing.claim_retry_s, max(1.0, float(merged["abandon_timeout_s"]) / 4)),
        )
        return Settings(
            images=_names(merged["images"], "images"),
            vcpus=int(merged["vcpus"]),
            memory_mib=int(merged["memory_mib"]),
            disk_gib=int(merged["disk_gib"]),
            price_per_hour=int(merged["price_per_hour"]),
            max_lease_h=int(merged["max_lease_h"]),
            region=str(merged["region"])[:40],
            policy=policy,
            timing=timing,
            sync_timeout_s=float(merged["sync_timeout_s"]),
            timezone=_zone(merged["timezone"]),
        )
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"bad [plugins.rental] setting: {exc}") from exc
