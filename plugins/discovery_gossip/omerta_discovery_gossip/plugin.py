"""Hook implementations of the `gossip` plugin, registered through the `omerta` entry point.

Registers the discovery backend, its configuration defaults, its control
methods and its commands. Touches nothing itself.
"""

from __future__ import annotations

from typing import Any

import click

import omerta_core
from omerta_core.errors import ConfigError
from omerta_core.hookspecs import ControlMethod
from omerta_core.interfaces.discovery import Discovery
from omerta_core.interfaces.transport import Transport
from omerta_core.node import NodeContext
from omerta_core.records import Need, ServiceRecord
from omerta_discovery_gossip import cli, control
from omerta_discovery_gossip.service import GossipDiscovery
from omerta_discovery_gossip.swim import SwimSettings

DEFAULTS = SwimSettings()
CONFIG_DEFAULTS: dict[str, Any] = {
    "probe_interval_s": DEFAULTS.probe_interval,
    "probe_timeout_s": DEFAULTS.probe_timeout,
    "indirect_probes": DEFAULTS.indirect_probes,
    "suspicion_mult": DEFAULTS.suspicion_mult,
    "retransmit_mult": DEFAULTS.retransmit_mult,
    "sync_every": DEFAULTS.sync_every,
    "cache_every_s": 10.0,
}


def build(node: NodeContext) -> GossipDiscovery:
    config = {**CONFIG_DEFAULTS, **node.plugin_config("gossip")}
    try:
        settings = SwimSettings(
            probe_interval=float(config["probe_interval_s"]),
            probe_timeout=float(config["probe_timeout_s"]),
            indirect_probes=int(config["indirect_probes"]),
            suspicion_mult=float(config["suspicion_mult"]),
            retransmit_mult=int(config["retransmit_mult"]),
            sync_every=int(config["sync_every"]),
        )
        cache_every_s = float(config["cache_every_s"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"plugins.gossip: {exc}") from exc
    if not 0 < settings.probe_timeout < settings.probe_interval:
        raise ConfigError("plugins.gossip.probe_timeout_s must be positive and below probe_interval_s")
    if settings.sync_every < 1 or settings.retransmit_mult < 1 or settings.indirect_probes < 0:
        raise ConfigError("plugins.gossip: sync_every and retransmit_mult must be at least 1")
    return GossipDiscovery(node, settings, cache_every_s=cache_every_s)


@omerta_core.hookimpl
def omerta_services() -> list[ServiceRecord]:
    return [
        ServiceRecord(
            name="gossip",
            provides=Discovery,
            needs=(Need(Transport, install="omerta-transport-udp"),),
            factory=build,
            description="SWIM gossip membership per network, signed peer records, invites, peer cache",
        )
    ]


@omerta_core.hookimpl
def omerta_config_defaults() -> dict[str, Any]:
    return dict(CONFIG_DEFAULTS)


@omerta_core.hookimpl
def omerta_control_methods() -> dict[str, ControlMethod]:
    return dict(control.METHODS)


@omerta_core.hookimpl
def omerta_cli_commands() -> list[click.Command]:
    return list(cli.COMMANDS)
