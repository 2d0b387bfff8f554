"""Control-API methods of the ``rental`` plugin (``rental.*``), for the CLI to drive a running node.

Each finds the node's rental service and returns plain JSON. Touches nothing itself.
"""

from __future__ import annotations

from typing import Any

from omerta_core.hookspecs import ControlMethod
from omerta_core.node import NodeContext
from omerta_rental.offers import Want
from omerta_rental.service import RentalError, Rentals, RentalService


def _service(node: NodeContext) -> RentalService:
    service = node.find(Rentals)
    if not isinstance(service, RentalService):
        raise RentalError("this node runs no rental service (start it with --plugins udp,gossip,omt,rental)")
    return service


def _int(params: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = params.get(key, default)
    if value is not None and (type(value) is not int or value < 0):
        raise RentalError(f"{key} must be a non-negative integer")
    return value


def _want(params: dict[str, Any]) -> Want:
    image = params.get("image")
    if image is not None and not isinstance(image, str):
        raise RentalError("image must be a name")
    return Want(_int(params, "vcpus"), _int(params, "memory_mib"), image, _int(params, "max_price"),
                _int(params, "lease_s"))  # fmt: skip


def offers(node: NodeContext, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [seen.as_json() for seen in _service(node).offers(_want(params))]


def request(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    activity = params.get("activity")
    key = params.get("ssh_public_key") or ""
    provider = params.get("provider")
    if (
        not isinstance(activity, str)
        or not isinstance(key, str)
        or (provider is not None and not isinstance(provider, str))
    ):
        raise RentalError("activity, ssh_public_key and provider must be text")
    lease_s = _int(params, "lease_s", 3600) or 3600
    rental = _service(node).request(_want(params), _int(params, "disk_gib", 1) or 1, lease_s, activity, key, provider)
    return {"rental": rental}


def _rental(params: dict[str, Any]) -> str:
    rental = params.get("rental")
    if not isinstance(rental, str) or not rental:
        raise RentalError("rental (an id or its prefix) is required")
    return rental


def show(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    service = _service(node)
    shown = service.resolve(_rental(params)).as_json()
    attachment = service.vpn.attached.get(shown["rental"]) if service.vpn.available else None
    shown["vpn"] = attachment is not None
    shown["vpn_available"] = service.vpn.available
    if attachment is not None:
        shown["address"], shown["enter"] = attachment.address, list(attachment.enter)
    return shown


def list_rentals(node: NodeContext, _params: dict[str, Any]) -> list[dict[str, Any]]:
    records = sorted(_service(node).records.values(), key=lambda r: r.started)
    return [{k: v for k, v in r.as_json().items() if k != "events"} for r in records]


def release(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    service = _service(node)
    record = service.resolve(_rental(params))
    service.release(record.rental)
    return {"rental": record.rental}


def topup(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    service = _service(node)
    record = service.resolve(_rental(params))
    service.top_up(record.rental, _int(params, "lease_s", 3600) or 3600)
    return {"rental": record.rental}


def preempt(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    service = _service(node)
    record = service.resolve(_rental(params))
    service.preempt(record.rental)
    return {"rental": record.rental}


METHODS: dict[str, ControlMethod] = {
    "rental.offers": offers,
    "rental.request": request,
    "rental.show": show,
    "rental.list": list_rentals,
    "rental.release": release,
    "rental.topup": topup,
    "rental.preempt": preempt,
}
