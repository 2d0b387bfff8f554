"""Control-API methods of the `gossip` plugin: the live view for ``omerta peers`` and ``omerta network``.

Touches only the running discovery service.
"""

from __future__ import annotations

from typing import Any

from omerta_core.interfaces.discovery import Discovery
from omerta_core.node import NodeContext
from omerta_discovery_gossip.errors import GossipError
from omerta_discovery_gossip.service import GossipDiscovery


def _service(node: NodeContext) -> GossipDiscovery:
    service = node.find(Discovery, "gossip")
    if not isinstance(service, GossipDiscovery):
        raise GossipError("the gossip discovery is not running on this node")
    return service


def peers(node: NodeContext, params: dict[str, Any]) -> list[dict[str, Any]]:
    service = _service(node)
    names = {core_id: name for core_id, name in ((n["id"], n["name"]) for n in networks(node, {}))}
    return [
        {
            "peer": str(info.peer),
            "network": info.network,
            "network_name": names.get(info.network, ""),
            "liveness": info.liveness.value,
            "endpoints": [str(e) for e in info.endpoints],
            "relays": [str(r) for r in info.relays],
            "capabilities": info.capabilities,
            "version": info.version,
        }
        for info in service.peers(params.get("network"))
    ]


def networks(node: NodeContext, _params: dict[str, Any]) -> list[dict[str, Any]]:
    status = _service(node).status()["networks"]
    return [{"id": network_id, **detail} for network_id, detail in status.items()]


def reload(node: NodeContext, _params: dict[str, Any]) -> dict[str, list[str]]:
    return _service(node).reload()


def endpoints(node: NodeContext, params: dict[str, Any]) -> list[str]:
    """Advertised endpoints; with ``loopback_fallback``, this machine's loopback ones when none is known yet."""
    service = _service(node)
    advertised = service.own_endpoints()
    if advertised or not params.get("loopback_fallback"):
        return advertised
    return service.loopback_endpoints()


def bootstrap(node: NodeContext, params: dict[str, Any]) -> dict[str, str]:
    """Join every network through ``params["entry"]`` (``HOST:PORT`` or ``PEERID@HOST:PORT``) now."""
    entry = str(params.get("entry", ""))
    _service(node).bootstrap(entry)
    return {"bootstrapping": entry}


METHODS = {
    "gossip.peers": peers,
    "gossip.networks": networks,
    "gossip.reload": reload,
    "gossip.endpoints": endpoints,
    "gossip.bootstrap": bootstrap,
}
