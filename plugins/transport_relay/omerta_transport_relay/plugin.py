"""Hook implementations of the `relay` plugin, registered through the `omerta` entry point.

Registers the NAT traversal backend (relay client, reflection, classification,
hole punching, and relay serving when ``plugins.relay.serve`` is true), its
configuration defaults, control methods and `omerta relay` commands. The relay is not
registered as a second transport: it carries the udp transport's session
packets as that transport's packet path, so ``node.service(Transport)``
stays unambiguous. It needs a transport that is a ``PacketPathHost``. Touches nothing itself.
"""

from __future__ import annotations

from typing import Any

import click

import omerta_core
from omerta_core.errors import ConfigError
from omerta_core.hookspecs import ControlMethod
from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.nat import NatTraversal
from omerta_core.interfaces.transport import PacketPathHost, Transport
from omerta_core.node import NodeContext
from omerta_core.records import Need, ServiceRecord
from omerta_transport_relay import cli
from omerta_transport_relay.service import RelayService

CONFIG_DEFAULTS: dict[str, Any] = {
    "serve": False,  # answer STUN and relay for others
    "other_port": 0,  # the relay's second port (filtering probes, a second STUN observer); 0 picks one
    "relays": [],  # "PEERID@HOST:PORT" (or "HOST:PORT", identified at start) of relays to hold allocations on
    "stun_servers": [],  # "HOST:PORT" of extra STUN servers used as observers
    "punch": True,  # try to upgrade relayed sessions to direct paths
}


def _flag(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"plugins.relay.{key} must be true or false, got {value!r}")


def _list(value: Any, key: str) -> list[str]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v]
    if not isinstance(value, list):
        raise ConfigError(f"plugins.relay.{key} must be a list of strings")
    return [str(v) for v in value]


def build(node: NodeContext) -> RelayService:
    config = {**CONFIG_DEFAULTS, **node.plugin_config("relay")}
    try:
        other_port = int(config["other_port"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"plugins.relay.other_port: {exc}") from exc
    return RelayService(
        node,
        serve=_flag(config["serve"], "serve"),
        other_port=other_port,
        relays=_list(config["relays"], "relays"),
        stun_servers=_list(config["stun_servers"], "stun_servers"),
        punching=_flag(config["punch"], "punch"),
    )


def _service(node: NodeContext) -> RelayService:
    service = node.service(NatTraversal, "relay")
    assert isinstance(service, RelayService)
    return service


def relay_status(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    """Observed endpoints, NAT behaviour, relays, punching and (when serving) relay counters."""
    return _service(node).status()


async def nat_punch(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    """Punch towards ``peer`` now; returns the direct endpoint or null."""
    peer = PeerId(params["peer"])
    endpoint = await _service(node).punch(peer, PeerId(params.get("rendezvous", peer)))
    return {"peer": peer, "direct": str(endpoint) if endpoint else None}


@omerta_core.hookimpl
def omerta_services() -> list[ServiceRecord]:
    return [
        ServiceRecord(
            name="relay",
            provides=NatTraversal,
            needs=(Need(Transport, also=(PacketPathHost,), install="omerta-transport-udp"),),
            factory=build,
            description="Relays (client and server), STUN reflection, NAT classification, hole punching",
        )
    ]


@omerta_core.hookimpl
def omerta_config_defaults() -> dict[str, Any]:
    return dict(CONFIG_DEFAULTS)


@omerta_core.hookimpl
def omerta_control_methods() -> dict[str, ControlMethod]:
    return {"relay.status": relay_status, "nat.punch": nat_punch}


@omerta_core.hookimpl
def omerta_cli_commands() -> list[click.Command]:
    return list(cli.COMMANDS)
