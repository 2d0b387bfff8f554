"""Control-API methods of the ``vpn`` plugin (``vpn.*``), for the CLI and tests.

Each receives the running node and the request's params and reaches the
service through ``node.find(Vpn, "vpn")``. Touches what the service touches.
"""

from __future__ import annotations

from typing import Any

from omerta_core.errors import OmertaError
from omerta_core.hookspecs import ControlMethod
from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.vpn import GatewayMode, Vpn
from omerta_core.node import NodeContext
from omerta_vpn.service import VpnService, _gateway_json, _tunnel_json


class VpnParamsError(OmertaError, ValueError):
    """A control request with a missing or malformed parameter."""


def _service(node: NodeContext) -> VpnService:
    service = node.find(Vpn, "vpn")
    if not isinstance(service, VpnService):
        raise VpnParamsError("this node runs no vpn (start it with --plugins vpn)")
    return service


def _text(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise VpnParamsError(f"{name} is required (a string)")
    return value


async def _tunnel_start(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    info = await _service(node).start_tunnel(_text(params, "vm_id"), PeerId(_text(params, "consumer")))
    return _tunnel_json(info)


async def _tunnel_stop(node: NodeContext, params: dict[str, Any]) -> dict[str, bool]:
    await _service(node).stop_tunnel(_text(params, "vm_id"))
    return {"stopped": True}


async def _gateway_attach(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    mode = params.get("mode")
    try:
        parsed = GatewayMode(mode) if mode is not None else None
    except ValueError as exc:
        raise VpnParamsError("mode is internet or isolated") from exc
    info = await _service(node).attach_gateway(_text(params, "vm_id"), PeerId(_text(params, "provider")), mode=parsed)
    return _gateway_json(info)


async def _gateway_detach(node: NodeContext, params: dict[str, Any]) -> dict[str, bool]:
    await _service(node).detach_gateway(_text(params, "vm_id"))
    return {"detached": True}


METHODS: dict[str, ControlMethod] = {
    "vpn.tunnels": lambda node, _params: [_tunnel_json(t) for t in _service(node).tunnels()],
    "vpn.tunnel.start": _tunnel_start,
    "vpn.tunnel.stop": _tunnel_stop,
    "vpn.gateways": lambda node, _params: [_gateway_json(g) for g in _service(node).gateways()],
    "vpn.gateway.attach": _gateway_attach,
    "vpn.gateway.detach": _gateway_detach,
    "vpn.rogue_events": lambda node, _params: list(_service(node).rogue_events),
    "vpn.status": lambda node, _params: _service(node).status(),
}
