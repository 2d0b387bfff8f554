"""Plugin discovery, selection by entry-point name, and its errors."""

from __future__ import annotations

import pytest

from omerta_core.errors import PluginLoadError, PluginUnavailableError, UnknownPluginError
from omerta_core.plugins import PluginHost, installed_plugins

from .conftest import lifecycle_plugin, unusable_plugin


def test_installed_plugins_found_by_entry_point(plugin_site) -> None:
    plugin_site("alpha", lifecycle_plugin("alpha"))
    found = installed_plugins()
    assert found["alpha"].distribution == "omerta-test-alpha"
    assert found["alpha"].version == "1.2.3"


def test_selection_loads_exactly_the_named_plugins(plugin_site) -> None:
    plugin_site("alpha", lifecycle_plugin("alpha"))
    plugin_site("beta", lifecycle_plugin("beta"))
    host = PluginHost.load(["beta"])
    assert list(host.loaded) == ["beta"]


def test_no_selection_loads_every_installed_plugin(plugin_site) -> None:
    plugin_site("alpha", lifecycle_plugin("alpha"))
    plugin_site("beta", lifecycle_plugin("beta"))
    host = PluginHost.load(None)
    assert {"alpha", "beta"} <= set(host.loaded)
    assert set(host.loaded) == set(installed_plugins())


def test_unknown_name_is_named_with_install_hint(plugin_site) -> None:
    plugin_site("alpha", lifecycle_plugin("alpha"))
    with pytest.raises(UnknownPluginError) as err:
        PluginHost.load(["alpha", "nosuch"])
    message = str(err.value)
    assert "'nosuch'" in message
    assert "pip install omerta-nosuch" in message
    assert "\n" not in message


def test_report_lists_hooks_truthfully(plugin_site) -> None:
    plugin_site("alpha", lifecycle_plugin("alpha"))
    plugin_site("empty", "")
    host = PluginHost.load(["alpha", "empty"])
    alpha = host.report("alpha")
    assert alpha.hooks == [
        "omerta_config_defaults",
        "omerta_control_methods",
        "omerta_node_started",
        "omerta_node_status",
        "omerta_node_stopping",
    ]
    assert alpha.usable
    assert host.report("empty").hooks == []


def test_plugin_for_another_platform_is_reported_not_crashed(plugin_site) -> None:
    plugin_site("otheros", unusable_plugin("otheros"))
    host = PluginHost.load(["otheros"])
    report = host.report("otheros")
    assert not report.usable
    assert "plan9" in (report.reason or "")
    with pytest.raises(PluginUnavailableError, match="otheros"):
        host.require_usable(["otheros"])


def test_broken_plugin_import_is_a_load_error(plugin_site) -> None:
    plugin_site("broken", "raise RuntimeError('boom')\n")
    with pytest.raises(PluginLoadError, match="'broken' failed to load: boom"):
        PluginHost.load(["broken"])


def test_wrong_record_type_is_refused(plugin_site) -> None:
    plugin_site(
        "liar",
        """
        from omerta_core import hookimpl

        @hookimpl
        def omerta_services():
            return [{"name": "x", "provides": "transport"}]
        """,
    )
    with pytest.raises(PluginLoadError, match="returned dict, expected ServiceRecord"):
        PluginHost.load(["liar"])
