"""How a backend finds another: by name, by the configured preference, or the first started."""

from __future__ import annotations

import pytest
import structlog

from omerta_core import config
from omerta_core.identity import Identity
from omerta_core.node import MissingServiceError, NodeContext
from omerta_core.plugins import PluginHost


def context(**overrides: object) -> NodeContext:
    cfg = config.load(environ={}, overrides=overrides)
    ctx = NodeContext(cfg, Identity.generate(), PluginHost(), structlog.get_logger())
    ctx.services["transport"] = {"udp": "udp-service", "relay": "relay-service"}
    return ctx


def test_first_started_by_default_and_by_name() -> None:
    ctx = context()
    assert ctx.service("transport") == "udp-service"
    assert ctx.service("transport", "relay") == "relay-service"


def test_configured_preference_wins() -> None:
    assert context(**{"node.transport": "relay"}).service("transport") == "relay-service"


def test_missing_kind_or_name_is_a_typed_error() -> None:
    ctx = context()
    with pytest.raises(MissingServiceError, match="no selected plugin provides a hypervisor"):
        ctx.service("hypervisor")
    with pytest.raises(MissingServiceError, match="transport 'tcp'"):
        ctx.service("transport", "tcp")
    assert not ctx.has_service("ledger")
