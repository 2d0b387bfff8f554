"""A plugin built for another plugin API is refused before it is imported, in one line naming what fits."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

import omerta_core
from omerta_core.errors import IncompatiblePluginError
from omerta_core.plugin_api import fitting_range
from omerta_core.plugins import PluginHost

from .conftest import lifecycle_plugin, run_cli

THIS = f"this is omerta-node {omerta_core.__version__} (plugin API {omerta_core.PLUGIN_API_VERSION})"

#: Imported only if the kernel forgets to check first.
EXPLODES_ON_IMPORT = "raise RuntimeError('imported a plugin built for another API')\n"


def test_the_plugin_api_is_the_kernels_major_version() -> None:
    assert Version(omerta_core.__version__).major == omerta_core.PLUGIN_API_VERSION
    api = omerta_core.PLUGIN_API_VERSION
    assert fitting_range() == f"omerta-node>={api},<{api + 1}"


def test_a_plugin_declaring_this_api_loads(plugin_site) -> None:
    plugin_site("fits", lifecycle_plugin("fits"), requires="omerta-node>=1.0,<2")
    assert list(PluginHost.load(["fits"]).loaded) == ["fits"]


def test_a_requirement_only_for_an_extra_is_not_a_declaration(plugin_site) -> None:
    plugin_site("extraonly", EXPLODES_ON_IMPORT, requires='omerta-node<1; extra == "old"')
    with pytest.raises(IncompatiblePluginError, match="does not say which kernel it fits"):
        PluginHost.load(["extraonly"])


@pytest.mark.parametrize(
    ("requires", "says"),
    [
        ("omerta-node>=2,<3", f"fits omerta-node<3,>=2; {THIS}"),
        ("omerta-node<1", f"fits omerta-node<1; {THIS}"),
        ("omerta>=0.1", "was built for the kernel's former name 'omerta' (before 1.0)"),
        (None, "does not say which kernel it fits"),
    ],
)
def test_a_plugin_for_another_api_is_refused_before_import(plugin_site, requires: str | None, says: str) -> None:
    plugin_site("other", EXPLODES_ON_IMPORT, requires=requires)
    with pytest.raises(IncompatiblePluginError) as err:
        PluginHost.load(["other"])
    message = str(err.value)
    assert message.startswith("plugin 'other' (omerta-test-other 1.2.3) ")
    assert says in message
    assert fitting_range() in message
    assert "\n" not in message


def test_the_node_does_not_start_with_it(plugin_site, tmp_path: Path) -> None:
    plugin_site("fits", lifecycle_plugin("fits"))
    plugin_site("old", EXPLODES_ON_IMPORT, requires="omerta-node>=0.1,<1")
    state = tmp_path / "state"
    result = run_cli("node", "--plugins", "fits,old", "--state-dir", str(state))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"Error: plugin 'old' (omerta-test-old 1.2.3) fits omerta-node<1,>=0.1; {THIS}: "
        f"install a release of omerta-test-old that depends on {fitting_range()}, or omerta-node<1,>=0.1"
    ]
    assert not (state / "fits-started").exists()
    assert not (state / "control.sock").exists()


def test_other_commands_warn_only_where_the_plugin_could_be_the_answer(plugin_site, tmp_path: Path) -> None:
    plugin_site("old", EXPLODES_ON_IMPORT, requires="omerta-node>=0.1,<1")
    assert run_cli("id", "--state-dir", str(tmp_path / "state")).stderr == ""
    missing = run_cli("oldcmd")
    assert missing.returncode == 2
    assert missing.stderr.startswith("omerta: warning: plugin 'old' (omerta-test-old 1.2.3) fits omerta-node<1,>=0.1;")
    assert "No such command 'oldcmd'" in missing.stderr
