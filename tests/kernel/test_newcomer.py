"""What a newcomer trips over in the kernel's CLI: each case fails with one line saying what to do.

Mistyped settings, bad bootstrap entries, a global ``--state-dir``, commands of
plugins the node did not load, Python exception names, the readable status,
the first start's log, plugins for other platforms and progress notes.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner

from omerta_core import config as config_mod
from omerta_core.cli import drop_unusable, main
from omerta_core.console import progress
from omerta_core.control import client
from omerta_core.errors import AmbiguousIdError, ConfigError, ControlError, UnknownIdError
from omerta_core.ids import resolve_prefix
from omerta_core.paths import ensure_plugin_dir
from omerta_core.plugins import PluginHost
from omerta_core.status_text import status_lines
from omerta_core.testing import NodeProcess

from .conftest import lifecycle_plugin, run_cli, unusable_plugin

EXCEPTION_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b|Traceback")

#: A plugin with a command for a control method, and a control method that fails unexpectedly.
COMMAND_PLUGIN = """
import click
from omerta_core import hookimpl
from omerta_core.cli import resolve_state_dir, state_dir_option
from omerta_core.control import client

@click.command(name="{name}-echo")
@state_dir_option
def echo(state_dir):
    click.echo(client.call(resolve_state_dir(state_dir), "{name}.echo", {"text": "hi"})["echo"])

@hookimpl
def omerta_cli_commands():
    return [echo]

@hookimpl
def omerta_control_methods():
    def broken(node, params):
        raise ValueError("expected HOST:PORT, got 'foo'")
    return {"{name}.broken": broken}
"""


def one_line_error(result_stderr: str) -> str:
    lines = result_stderr.strip().splitlines()
    assert len(lines) == 1, result_stderr
    assert not EXCEPTION_NAME.search(lines[0]), lines[0]
    return lines[0]


def test_a_mistyped_setting_names_the_nearest_key(plugin_site, tmp_path: Path) -> None:
    plugin_site("alpha", lifecycle_plugin("alpha"))
    result = run_cli("node", "--plugins", "alpha", "--state-dir", str(tmp_path), "--set", "plugins.alpha.greting=x")
    assert result.returncode == 1
    line = one_line_error(result.stderr)
    assert "unknown setting plugins.alpha.greting (from --set); did you mean plugins.alpha.greeting?" in line
    assert not (tmp_path / "control.sock").exists()


def test_a_mistyped_toml_section_is_an_error(plugin_site, tmp_path: Path) -> None:
    plugin_site("alpha", lifecycle_plugin("alpha"))
    file = tmp_path / "c.toml"
    file.write_text('[nodee]\nlog_level = "debug"\n')
    result = run_cli("node", "--plugins", "alpha", "--config", str(file), "--state-dir", str(tmp_path / "s"))
    assert result.returncode == 1
    assert "unknown setting nodee.log_level" in one_line_error(result.stderr)
    assert "did you mean node.log_level?" in result.stderr


def test_an_invalid_value_says_what_is_expected() -> None:
    config = config_mod.load(
        plugin_defaults={"udp": {"port": 7700, "keepalive_s": 25.0}},
        environ={},
        overrides={"plugins.udp.port": "abc"},
    )
    with pytest.raises(ConfigError, match=r"plugins\.udp\.port \(from --set\) must be an integer, got 'abc'"):
        config_mod.check(config, ["udp"])


def test_valid_settings_pass_and_node_defaults_table_is_accepted(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('[node]\ndefaults = {transport = "udp"}\n[plugins.udp]\nport = 7000\nkeepalive_s = 5\n')
    config = config_mod.load(config_file=file, plugin_defaults={"udp": {"port": 7700, "keepalive_s": 25.0}}, environ={})
    config_mod.check(config, ["udp", "kvm"])
    assert config.get("node.defaults.transport") == "udp"


def test_unknown_environment_variable_and_uninstalled_plugin_section_are_errors() -> None:
    config = config_mod.load(environ={"OMERTA_LOG_LEVL": "debug"})
    with pytest.raises(ConfigError, match=r"node\.log_levl \(from env OMERTA_LOG_LEVL\); did you mean node\.log_level"):
        config_mod.check(config, [])
    config = config_mod.load(environ={}, overrides={"plugins.nosuch.port": 1})
    with pytest.raises(ConfigError, match="no plugin 'nosuch' is installed"):
        config_mod.check(config, ["udp"])


def test_a_log_level_nobody_knows_is_an_error() -> None:
    config = config_mod.load(environ={"OMERTA_LOG_LEVEL": "loud"})
    with pytest.raises(ConfigError, match=r"node\.log_level must be one of debug, info, warning, error, got 'loud'"):
        config_mod.check(config, [])


def test_a_bad_bootstrap_entry_stops_the_node(plugin_site, tmp_path: Path) -> None:
    plugin_site("alpha", lifecycle_plugin("alpha"))
    result = run_cli("node", "--plugins", "alpha", "--state-dir", str(tmp_path), "--bootstrap", "notanaddress")
    assert result.returncode == 1
    assert "bad bootstrap entry 'notanaddress': expected HOST:PORT or PEERID@HOST:PORT" in one_line_error(result.stderr)


def test_a_port_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("node", "--port", "70000", "--state-dir", str(tmp_path))
    assert result.returncode == 2
    assert "'--port'" in one_line_error(result.stderr)
    assert "(see 'omerta node --help')" in result.stderr


def test_global_state_dir_and_its_variable_in_help(tmp_path: Path) -> None:
    result = run_cli("--state-dir", str(tmp_path / "g"), "id")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "g" / "identity.key").exists()
    assert stat.S_IMODE((tmp_path / "g").stat().st_mode) == 0o700
    helped = run_cli("--help")
    assert "--state-dir" in helped.stdout and "OMERTA_STATE_DIR" in helped.stdout
    assert "OMERTA_STATE_DIR" in run_cli("status", "--help").stdout


def test_plugin_directories_are_private_at_every_level(tmp_path: Path) -> None:
    plugin_dir = ensure_plugin_dir(tmp_path / "state", "gossip")
    for path in (tmp_path / "state", tmp_path / "state" / "plugins", plugin_dir):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_command_of_a_plugin_the_node_did_not_load_says_how_to_restart(plugin_site, tmp_path: Path) -> None:
    plugin_site("alpha", lifecycle_plugin("alpha"))
    plugin_site("beta", COMMAND_PLUGIN.replace("{name}", "beta"))
    node = NodeProcess(tmp_path / "state", "alpha").start()
    try:
        result = run_cli("beta-echo", "--state-dir", str(node.state_dir))
    finally:
        node.stop()
    assert result.returncode == 1
    line = one_line_error(result.stderr)
    assert "does not run plugin 'beta' (it runs alpha)" in line
    assert "`omerta node --plugins alpha,beta`" in line
    assert "beta.echo" not in line and "no method" not in line


def test_an_unexpected_failure_in_the_node_shows_no_exception_name(plugin_site, tmp_path: Path) -> None:
    plugin_site("beta", COMMAND_PLUGIN.replace("{name}", "beta"))
    node = NodeProcess(tmp_path / "state", "beta").start()
    try:
        with pytest.raises(ControlError) as info:
            client.call(node.state_dir, "beta.broken")
    finally:
        node.stop()
    assert not EXCEPTION_NAME.search(str(info.value))
    assert "beta.broken" not in str(info.value)
    assert "ValueError" in node.log_tail(20_000)  # the operator still finds it in the log


def test_status_is_a_readable_summary(plugin_site, tmp_path: Path) -> None:
    plugin_site("alpha", lifecycle_plugin("alpha"))
    node = NodeProcess(tmp_path / "state", "alpha").start()
    try:
        text = run_cli("status", "--state-dir", str(node.state_dir))
        as_json = json.loads(run_cli("status", "--json", "--state-dir", str(node.state_dir)).stdout)
    finally:
        node.stop()
    assert text.returncode == 0
    assert "{" not in text.stdout
    assert f"peer      {node.peer_id}" in text.stdout
    assert "plugin alpha\n  alive: yes" in text.stdout
    assert as_json["plugin_status"] == {"alpha": {"alive": True}}


def test_status_lines_put_labels_apart_and_summarise_nested_counters() -> None:
    lines = status_lines(
        {
            "peer_id": "p",
            "pid": 1,
            "uptime_s": 300,
            "state_dir": "/s",
            "plugins": {"udp": "0.1.0"},
            "services": {
                "transport": {
                    "udp": {"endpoints": ["[::]:7700"], "counters": {"sent": 3, "dropped": 0}, "peers": [{"peer": "x"}]}
                }
            },
            "control": {"refused": 0, "malformed": 0},
        }
    )
    assert lines[:4] == ["peer      p", "pid       1, up 5 min", "state     /s", "plugins   udp 0.1.0"]
    assert "transport: udp" in lines
    assert "  counters: sent 3, dropped 0" in lines
    assert "  endpoints: [::]:7700" in lines
    assert "  peers: 1 (--json lists them)" in lines


def test_first_start_logs_full_peer_id_and_a_next_step(plugin_site, tmp_path: Path) -> None:
    plugin_site("alpha", lifecycle_plugin("alpha"))
    node = NodeProcess(tmp_path / "state", "alpha").start()
    node.stop()
    first = node.log_tail(50_000)
    assert node.peer_id in first
    assert "omerta network create NAME" in first
    node.start()
    node.stop()
    second = node.log_tail(50_000)[len(first) :]
    assert node.peer_id in second
    assert "omerta network create NAME" not in second


def test_a_plugin_for_another_platform_is_left_out_quietly(plugin_site) -> None:
    plugin_site("alpha", lifecycle_plugin("alpha"))
    plugin_site("otheros", unusable_plugin("otheros"))
    host = PluginHost.load(["alpha", "otheros"])
    with structlog.testing.capture_logs() as logs:
        drop_unusable(host)
    assert list(host.loaded) == ["alpha"]
    assert [entry["log_level"] for entry in logs] == ["debug"]
    assert host.manager.get_plugin("otheros") is None


def test_id_prefixes_resolve_or_say_why() -> None:
    known = ["2msrxbeiecpd7a", "2msz00", "0d859c12ffff"]
    assert resolve_prefix("0d85", known, "VM id") == "0d859c12ffff"
    assert resolve_prefix("2MSRX", known) == "2msrxbeiecpd7a"
    with pytest.raises(AmbiguousIdError, match="peer prefix '2ms' is ambiguous: it matches 2msrxbe…, 2msz00…"):
        resolve_prefix("2ms", known, "peer")
    with pytest.raises(UnknownIdError, match="no VM id starts with 'ff'"):
        resolve_prefix("ff", known, "VM id")


def test_progress_degrades_to_plain_lines_when_not_a_terminal() -> None:
    runner = CliRunner()

    @main.command(name="slow-test-command", hidden=True)
    def slow() -> None:
        with progress("working") as note:
            note("step one")
            note("step two")

    try:
        result = runner.invoke(main, ["slow-test-command"])
    finally:
        main.commands.pop("slow-test-command")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == ["working: step one", "working: step two"]


def test_usage_errors_are_one_line_pointing_at_help() -> None:
    result = CliRunner().invoke(main, ["config", "show", "--bogus"], prog_name="omerta")
    assert result.exit_code == 2
    assert result.stderr == "Error: No such option '--bogus' (see 'omerta config show --help')\n"
