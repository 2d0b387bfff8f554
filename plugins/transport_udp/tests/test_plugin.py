"""The plugin's hooks: registration, defaults, configuration checks, dual-stack and listed hosts."""

from __future__ import annotations

import pytest
import structlog
from omerta_transport_udp import plugin

from omerta_core.config import Config
from omerta_core.errors import ConfigError
from omerta_core.identity import Identity
from omerta_core.interfaces.transport import Transport
from omerta_core.node import NodeContext


def context(**settings: object) -> NodeContext:
    config = Config()
    for key, value in settings.items():
        config.set(f"plugins.udp.{key}", value, "test")
    return NodeContext(config, Identity.generate(), host=None, log=structlog.get_logger())  # type: ignore[arg-type]


def test_registers_udp_with_defaults() -> None:
    (record,) = plugin.omerta_services()
    assert record.name == "udp" and record.why_unusable() is None
    assert record.provides is Transport and record.default
    defaults = plugin.omerta_config_defaults()
    assert defaults["port"] == 7700 and defaults["mtu"] == 1280 and defaults["keepalive_s"] == 25.0
    assert {"udp.send", "udp.received", "udp.subscribe", "udp.peers"} <= set(plugin.omerta_control_methods())


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"port": 70000}, "port"), ({"mtu": "big"}, "plugins.udp"), ({"rekey_after_s": 200.0}, "reject_after_s")],
)
def test_bad_configuration_is_one_clear_error(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plugin.build(context(**settings))


@pytest.mark.asyncio
async def test_listens_on_each_listed_host() -> None:
    transport = plugin.build(context(host=["127.0.0.1", "::1"], port=0))
    await transport.start()
    try:
        endpoints = transport.local_endpoints()
        assert [e.host for e in endpoints] == ["127.0.0.1", "::1"]
        assert endpoints[0].port == endpoints[1].port
    finally:
        await transport.stop()
