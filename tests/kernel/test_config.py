"""Configuration layers and their precedence: default < plugin < file < env < flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from omerta_core import config
from omerta_core.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_each_layer_overrides_the_one_before(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", '[node]\nlog_level = "warning"\n[plugins.udp]\nport = 7000\nmtu = 1400\n')
    cfg = config.load(
        config_file=file,
        plugin_defaults={"udp": {"port": 7700, "mtu": 1280, "keepalive_s": 25}},
        environ={"OMERTA_UDP__MTU": "1300", "OMERTA_LOG_LEVEL": "debug"},
        overrides={"plugins.udp.mtu": 1200},
    )
    assert cfg.plugin("udp") == {"port": 7000, "mtu": 1200, "keepalive_s": 25}
    assert cfg.settings["plugins.udp.keepalive_s"].source == "plugin udp"
    assert cfg.settings["plugins.udp.port"].source == f"file {file}"
    assert cfg.settings["plugins.udp.mtu"].source == "flag"
    assert cfg.node("log_level") == "debug"
    assert cfg.settings["node.log_level"].source == "env OMERTA_LOG_LEVEL"
    assert cfg.settings["node.shutdown_timeout_s"].source == "default"


def test_plugin_lists_from_env_and_file(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", '[node]\nplugins = ["udp", "relay"]\n')
    assert config.load(config_file=file, environ={}).node("plugins") == ["udp", "relay"]
    from_env = config.load(config_file=file, environ={"OMERTA_PLUGINS": "kvm, gossip"})
    assert from_env.node("plugins") == ["kvm", "gossip"]


def test_config_file_named_by_environment(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", '[node]\nstate_dir = "/srv/omerta"\n')
    cfg = config.load(environ={"OMERTA_CONFIG": str(file)})
    assert cfg.state_dir == Path("/srv/omerta")
    assert cfg.file == file


def test_broken_toml_is_a_config_error_with_the_file_name(tmp_path: Path) -> None:
    file = write(tmp_path / "bad.toml", "[node\n")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        config.load(config_file=file, environ={})


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(config_file=tmp_path / "nope.toml", environ={})


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("off", False), ("12", 12), ("1.5", 1.5), ('["a", "b"]', ["a", "b"]), ("plain", "plain")],
)
def test_values_from_strings(text: str, value: object) -> None:
    assert config.parse_value(text) == value


def test_as_dict_nests_keys() -> None:
    cfg = config.load(environ={"OMERTA_UDP__PORT": "9"}, config_file=None)
    assert cfg.as_dict()["plugins"]["udp"]["port"] == 9
