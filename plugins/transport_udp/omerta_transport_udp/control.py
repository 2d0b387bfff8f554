"""Control-API methods of the `udp` plugin: send, subscribe and read, add peers, list paths.

Used by the CLI-less tests and demos to drive a running node. Received
messages are kept in a bounded per-channel mailbox once a channel is
subscribed. Touches only the node's transport service.
"""

from __future__ import annotations

import base64
from collections import deque
from typing import Any
from weakref import WeakKeyDictionary

from omerta_core.ids import resolve_prefix
from omerta_core.interfaces.common import Endpoint, PeerId
from omerta_core.interfaces.discovery import Discovery
from omerta_core.interfaces.transport import Delivery, Transport
from omerta_core.node import NodeContext
from omerta_transport_udp.errors import TransportError
from omerta_transport_udp.service import UdpTransport

#: Messages a mailbox keeps per channel before dropping the oldest.
MAILBOX_LIMIT = 200_000
#: Most pings one ``omerta ping`` sends (one a second).
MAX_PINGS = 100

_mailboxes: WeakKeyDictionary[UdpTransport, dict[str, deque[tuple[str, bytes]]]] = WeakKeyDictionary()


def _transport(node: NodeContext) -> UdpTransport:
    transport = node.find(Transport, "udp")
    if not isinstance(transport, UdpTransport):
        raise TransportError("the udp transport is not running on this node")
    return transport


def _payload(params: dict[str, Any]) -> bytes:
    if "data_b64" in params:
        return base64.b64decode(params["data_b64"])
    return str(params.get("text", "")).encode()


async def send(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    """Send ``text`` or ``data_b64`` to ``peer`` on ``channel``; ``count`` > 1 appends an index to each."""
    transport = _transport(node)
    delivery = Delivery(params.get("delivery", "reliable"))
    data = _payload(params)
    count = int(params.get("count", 1))
    for index in range(count):
        message = data + str(index).encode() if count > 1 else data
        await transport.send(PeerId(params["peer"]), params["channel"], message, delivery=delivery)
    return {"sent": count}


def subscribe(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    """Start keeping messages that arrive on ``channel``."""
    transport = _transport(node)
    channel = params["channel"]
    boxes = _mailboxes.setdefault(transport, {})
    if channel not in boxes:
        box: deque[tuple[str, bytes]] = deque(maxlen=MAILBOX_LIMIT)
        boxes[channel] = box
        transport.on_message(channel, lambda peer, data: box.append((peer, data)))
    return {"channel": channel}


def received(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    """Take up to ``max`` kept messages of ``channel`` (``count_only`` to just count them)."""
    box = _mailboxes.get(_transport(node), {}).get(params["channel"])
    if box is None:
        raise TransportError(f"channel {params['channel']!r} is not subscribed (call udp.subscribe first)")
    if params.get("count_only"):
        return {"count": len(box)}
    limit = int(params.get("max", 1000))
    taken = [box.popleft() for _ in range(min(limit, len(box)))]
    return {"messages": [{"peer": p, "data_b64": base64.b64encode(d).decode()} for p, d in taken]}


def add_peer(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    """Tell the transport where ``peer`` listens (``endpoints``: list of HOST:PORT)."""
    endpoints = [Endpoint.parse(e) for e in params.get("endpoints", [])]
    _transport(node).add_peer(PeerId(params["peer"]), endpoints)
    return {"peer": params["peer"]}


def peers(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    """Every known peer with its path state, route, session age and reliable backlog."""
    return {"peers": _transport(node).status()["peers"]}


async def identify(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    """Ask who listens at ``endpoint`` (HOST:PORT)."""
    return {"peer": await _transport(node).identify(Endpoint.parse(str(params.get("endpoint", ""))))}


def known_peers(node: NodeContext, transport: UdpTransport) -> set[str]:
    """Peer ids the transport or discovery knows: what a prefix may name."""
    known = {str(row["peer"]) for row in transport.status()["peers"]}
    discovery = node.find(Discovery)
    if discovery is not None:
        known |= {str(info.peer) for info in discovery.peers()}
    return known


async def ping(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    """Ping ``peer`` (an id or a unique prefix) ``count`` times; the first ping carries ``message``."""
    transport = _transport(node)
    if transport.pinger is None:
        raise TransportError("the udp transport is not running")
    peer = PeerId(resolve_prefix(str(params.get("peer", "")), known_peers(node, transport), "peer"))
    count = params.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_PINGS:
        raise TransportError(f"count must be 1-{MAX_PINGS}")
    message = str(params.get("message") or "")
    return await transport.pinger.ping_many(peer, count, message, lambda: transport.core.route_of(peer))


METHODS: dict[str, Any] = {
    "udp.send": send,
    "udp.subscribe": subscribe,
    "udp.received": received,
    "udp.add_peer": add_peer,
    "udp.peers": peers,
    "udp.identify": identify,
    "udp.ping": ping,
}
