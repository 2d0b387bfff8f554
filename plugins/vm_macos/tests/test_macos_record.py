"""The macOS backend declares itself for darwin and says why it cannot run elsewhere."""

from __future__ import annotations

import pytest
from omerta_vm_macos import plugin

from omerta_core.errors import PluginUnavailableError
from omerta_core.plugins import PluginHost


def test_registered_under_its_entry_point_name() -> None:
    host = PluginHost.load(["macos"])
    assert host.report("macos").hooks == ["omerta_services"]
    assert host.report("macos").backends == ["hypervisor:macos"]


def test_refuses_on_linux_with_the_platform_reason() -> None:
    (record,) = plugin.omerta_services()
    assert record.why_unusable("linux") == "macos runs on darwin, not on linux"


def test_says_not_implemented_on_darwin_instead_of_pretending() -> None:
    (record,) = plugin.omerta_services()
    assert record.why_unusable("darwin") == plugin.NOT_IMPLEMENTED
    with pytest.raises(PluginUnavailableError):
        record.factory(None)  # type: ignore[arg-type]
