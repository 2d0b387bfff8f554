"""Hook implementations of the `udp` plugin, registered through the `omerta` entry point.

Registers the transport, its configuration defaults, its control methods and `omerta udp`.
Touches nothing itself; the transport it builds binds UDP sockets.
"""

from __future__ import annotations

from typing import Any

import click

import omerta_core
from omerta_core.errors import ConfigError
from omerta_core.hookspecs import ControlMethod
from omerta_core.interfaces.transport import Transport
from omerta_core.node import NodeContext
from omerta_core.records import ServiceRecord
from omerta_transport_udp import cli, control
from omerta_transport_udp.core import Settings
from omerta_transport_udp.service import UdpTransport

#: The port a real node listens on unless told otherwise (tests pass port=0).
DEFAULT_PORT = 7700

CONFIG_DEFAULTS: dict[str, Any] = {
    "host": "::",  # dual stack; a list such as ["0.0.0.0", "::1"] binds several addresses
    "port": DEFAULT_PORT,
    "mtu": 1280,
    "keepalive_s": 25.0,
    "rekey_after_s": 120.0,
    "reject_after_s": 180.0,
    "peers": [],  # "PEERID@HOST:PORT" entries to connect to at start
}


def build(node: NodeContext) -> UdpTransport:
    config = {**CONFIG_DEFAULTS, **node.plugin_config("udp")}
    hosts = config["host"] if isinstance(config["host"], list) else [config["host"]]
    try:
        settings = Settings(
            mtu=int(config["mtu"]),
            keepalive_s=float(config["keepalive_s"]),
            rekey_after_s=float(config["rekey_after_s"]),
            reject_after_s=float(config["reject_after_s"]),
        )
        chosen = node.config.node("port")  # omerta node --port, over plugins.udp.port
        port = int(config["port"] if chosen is None else chosen)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"plugins.udp: {exc}") from exc
    if not 0 <= port < 65536:
        raise ConfigError(f"plugins.udp.port must be 0-65535, got {port}")
    if settings.reject_after_s <= settings.rekey_after_s:
        raise ConfigError("plugins.udp.reject_after_s must be larger than rekey_after_s")
    return UdpTransport(
        node.identity.signing_key,
        hosts=[str(h) for h in hosts],
        port=port,
        settings=settings,
        peers=[str(p) for p in config["peers"]],
        log=node.log,
    )


@omerta_core.hookimpl
def omerta_services() -> list[ServiceRecord]:
    return [
        ServiceRecord(
            name="udp",
            provides=Transport,
            factory=build,
            description="Encrypted UDP: Noise IK sessions per peer pair, named channels, roaming",
            default=True,
        )
    ]


@omerta_core.hookimpl
def omerta_config_defaults() -> dict[str, Any]:
    return dict(CONFIG_DEFAULTS)


@omerta_core.hookimpl
def omerta_control_methods() -> dict[str, ControlMethod]:
    return control.METHODS


@omerta_core.hookimpl
def omerta_cli_commands() -> list[click.Command]:
    return list(cli.COMMANDS)
