"""The ``[plugins.vpn]`` settings: defaults and their parsing into :class:`Settings`.

Pure. Touches nothing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from omerta_core.errors import ConfigError
from omerta_core.interfaces.vpn import GatewayMode
from omerta_vpn.tunnel import FramesMode, RoguePolicy, Timing

CONFIG_DEFAULTS: dict[str, Any] = {
    "frames": "fit",  # "fit": the guest MTU makes every frame one datagram; "fragment": split larger ones
    "auto_tunnel": True,  # start a tunnel for every VM whose consumer is another peer
    "rogue_policy": "kill",  # "kill" or "pause" a VM that sends frames with a foreign source MAC
    "rogue_threshold": 1,  # ... after this many such frames
    "keepalive_s": 1.0,
    "consumer_timeout_s": 3.0,
    "lease_grace_s": 30.0,  # consumer unheard this long: the VM is paused
    "delete_after_s": 60.0,  # paused this long without the consumer back: the VM is deleted
    "gateway_mode": "internet",  # default mode of consumer gateways: "internet" or "isolated"
    "subnet": "198.18.255.0/24",  # each gateway's link to its VM (each in its own namespace)
    "upstream_dns": True,  # the gateway's DNS forwards to the consumer's resolvers (internet mode)
    # while a VM's tunnel carries frames, wake the provider's loop this often so its CPU answers the next
    # frame from warm (0: never; see docs/vpn.md, "Keeping the provider's CPU ready")
    "provider_keep_warm_ms": 5.0,
}
#: Frames never exceed a 1500-byte MTU, whatever the mode.
MAX_MTU = 1500


@dataclass(frozen=True)
class Settings:
    frames: FramesMode
    auto_tunnel: bool
    rogue_policy: RoguePolicy
    rogue_threshold: int
    timing: Timing
    gateway_mode: GatewayMode
    subnet: ipaddress.IPv4Network
    upstream_dns: bool
    #: The provider's keep-warm tick in seconds while its tunnels carry frames; 0: off.
    provider_keep_warm_s: float


def parse_settings(raw: dict[str, Any]) -> Settings:
    config = {**CONFIG_DEFAULTS, **raw}
    try:
        timing = Timing(
            keepalive_s=float(config["keepalive_s"]),
            consumer_timeout_s=float(config["consumer_timeout_s"]),
            lease_grace_s=float(config["lease_grace_s"]),
            delete_after_s=float(config["delete_after_s"]),
        )
        settings = Settings(
            frames=FramesMode(str(config["frames"])),
            auto_tunnel=_flag(config["auto_tunnel"]),
            rogue_policy=RoguePolicy(str(config["rogue_policy"])),
            rogue_threshold=int(config["rogue_threshold"]),
            timing=timing,
            gateway_mode=GatewayMode(str(config["gateway_mode"])),
            subnet=ipaddress.IPv4Network(str(config["subnet"])),
            upstream_dns=_flag(config["upstream_dns"]),
            provider_keep_warm_s=float(config["provider_keep_warm_ms"]) / 1000,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"plugins.vpn: {exc}") from exc
    if settings.subnet.prefixlen > 29:
        raise ConfigError(f"plugins.vpn.subnet needs room for two hosts, got {settings.subnet}")
    if settings.rogue_threshold < 1 or min(vars(timing).values()) <= 0:
        raise ConfigError("plugins.vpn: rogue_threshold and every time must be positive")
    if not 0 <= settings.provider_keep_warm_s <= 1:
        raise ConfigError("plugins.vpn.provider_keep_warm_ms must be between 0 (off) and 1000")
    return settings


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
