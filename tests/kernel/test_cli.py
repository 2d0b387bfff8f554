"""CLI output: plugins table and JSON, id, config show, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import lifecycle_plugin, run_cli, unusable_plugin


def test_plugins_json_lists_name_distribution_version_hooks(plugin_site) -> None:
    plugin_site("alpha", lifecycle_plugin("alpha"))
    plugin_site("otheros", unusable_plugin("otheros"))
    result = run_cli("plugins", "--json", "--plugins", "alpha,otheros")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [p["name"] for p in listed] == ["alpha", "otheros"]
    alpha, otheros = listed
    assert alpha["distribution"] == "omerta-test-alpha"
    assert alpha["version"] == "1.2.3"
    assert "omerta_node_started" in alpha["hooks"]
    assert alpha["usable"] is True
    assert otheros["usable"] is False
    assert otheros["backends"] == ["hypervisor:otheros"]


def test_plugins_table_says_why_unusable(plugin_site) -> None:
    plugin_site("otheros", unusable_plugin("otheros"))
    result = run_cli("plugins", "--plugins", "otheros")
    header, row = result.stdout.splitlines()
    assert header.split() == ["NAME", "DISTRIBUTION", "VERSION", "PROVIDES", "NEEDS", "USABLE"]
    assert row.split()[:5] == ["otheros", "omerta-test-otheros", "1.2.3", "hypervisor", "-"]
    assert "no: otheros runs on plan9" in row


def test_id_is_stable_and_json(tmp_path: Path) -> None:
    first = run_cli("id", "--state-dir", str(tmp_path))
    second = run_cli("id", "--state-dir", str(tmp_path), "--json")
    assert first.returncode == 0
    assert json.loads(second.stdout)["peer_id"] == first.stdout.strip()


def test_config_show_reports_sources(plugin_site, tmp_path: Path) -> None:
    plugin_site("alpha", lifecycle_plugin("alpha"))
    config = tmp_path / "omerta.toml"
    config.write_text('[node]\nlog_level = "warning"\n')
    result = run_cli(
        "config", "show", "--json", "--plugins", "alpha", "--config", str(config), env={"OMERTA_ALPHA__GREETING": "hej"}
    )
    shown = json.loads(result.stdout)
    assert shown["node.log_level"] == {"value": "warning", "source": f"file {config}"}
    assert shown["plugins.alpha.greeting"] == {"value": "hej", "source": "env OMERTA_ALPHA__GREETING"}
    assert shown["node.shutdown_timeout_s"]["source"] == "default"


def test_status_without_node_is_one_line(tmp_path: Path) -> None:
    result = run_cli("status", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "no node is running" in result.stderr
