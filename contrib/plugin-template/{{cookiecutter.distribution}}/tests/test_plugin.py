"""The plugin is found through its entry point and its command runs."""

from click.testing import CliRunner

from omerta_core.cli import main
from omerta_core.plugins import PluginHost


def test_registered_and_command_runs() -> None:
    host = PluginHost.load(["{{ cookiecutter.name }}"])
    assert "omerta_cli_commands" in host.report("{{ cookiecutter.name }}").hooks
    result = CliRunner().invoke(main, ["{{ cookiecutter.name }}"])
    assert result.output == "hello from {{ cookiecutter.name }}\n"
