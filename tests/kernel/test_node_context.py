"""How a backend finds another: by kind (the Protocol class), by name, by the configured default."""

from __future__ import annotations

import pytest
import structlog

from omerta_core import config
from omerta_core.errors import ConflictError
from omerta_core.identity import Identity
from omerta_core.interfaces.hypervisor import Hypervisor
from omerta_core.interfaces.ledger import Ledger
from omerta_core.interfaces.transport import Transport
from omerta_core.node import NodeContext
from omerta_core.plugins import PluginHost
from omerta_core.records import ServiceRecord
from omerta_core.services import MissingServiceError


class FakeService:
    """Enough of a service for the table: these tests look things up, they never start them."""

    def __init__(self, label: str) -> None:
        self.label = label

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> dict[str, str]:
        return {"label": self.label}


def record(name: str, provides: type = Transport) -> ServiceRecord:
    return ServiceRecord(name=name, provides=provides, factory=lambda _node: FakeService(name), description="test")


def context(**overrides: object) -> NodeContext:
    cfg = config.load(environ={}, overrides=overrides)
    ctx = NodeContext(cfg, Identity.generate(), PluginHost(), structlog.get_logger())
    ctx.services.add("udp", record("udp"), FakeService("udp-service"))
    ctx.services.add("relay", record("relay"), FakeService("relay-service"))
    return ctx


def label(service: object) -> str:
    assert isinstance(service, FakeService)
    return service.label


def test_first_started_by_default_and_by_name() -> None:
    ctx = context()
    assert label(ctx.service(Transport)) == "udp-service"
    assert label(ctx.service(Transport, "relay")) == "relay-service"


def test_configured_default_wins() -> None:
    assert label(context(**{"node.defaults.transport": "relay"}).service(Transport)) == "relay-service"


def test_missing_kind_or_name_is_a_typed_error_and_find_says_none() -> None:
    ctx = context()
    with pytest.raises(MissingServiceError, match="no running plugin provides a hypervisor"):
        ctx.service(Hypervisor)
    with pytest.raises(MissingServiceError, match="transport 'tcp'"):
        ctx.service(Transport, "tcp")
    assert ctx.find(Ledger) is None


def test_a_second_backend_of_one_kind_and_name_names_both_plugins() -> None:
    ctx = context()
    with pytest.raises(ConflictError, match="plugins udp and udp2 both provide a transport named 'udp'"):
        ctx.services.add("udp2", record("udp"), FakeService("again"))
