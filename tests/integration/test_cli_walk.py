"""Every command and subcommand of ``omerta``, with every built-in plugin installed.

Each is run with ``--help`` (exit 0, usage on standard output) and with one
deliberately wrong argument (a non-zero exit, exactly one line on standard
error, no traceback and no Python exception name). The table of wrong
arguments must name every command, so a new command cannot skip the walk.
The walk runs in-process (one Python start per command would take minutes on
a shared machine); a few cases also run as real processes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from omerta_core.cli import main

PEER = "2msrxbeiecpd"

#: One wrong argument per command path: a value that cannot be right, a missing or extra
#: argument, a mistyped subcommand, or (for commands that need one) no running node.
WRONG: dict[str, list[str]] = {
    "": ["no-such-command"],
    "config": ["shwo"],
    "config show": ["--config", "/nonexistent/omerta.toml"],
    "id": ["unexpected-extra"],
    "ledger": ["balanse"],
    "ledger accuse": ["session", "--evidence", "/nonexistent/evidence.json"],
    "ledger audit": [PEER, "extra"],
    "ledger balance": [PEER, "extra"],
    "ledger check": [],
    "ledger lock": [PEER, "0"],
    "ledger query": [PEER, "--what", "colour"],
    "ledger renew": ["session", "0"],
    "ledger settle": ["session"],
    "ledger show": ["--start", "first"],
    "ledger suspicion": [],
    "ledger sync": ["--timeout", "0"],
    "ledger topup": ["session", "zero"],
    "ledger transfer": [PEER, "0"],
    "ledger trust": [],
    "ledger verify": ["extra"],
    "ledger verify-audit": ["/nonexistent/audit.json"],
    "network": ["craete"],
    "network create": [""],
    "network invite": ["lab", "--ttl", "0"],
    "network join": ["notalink"],
    "network leave": ["nosuchnetwork"],
    "network list": ["extra"],
    "node": ["--bootstrap", "notanaddress"],
    "offers": ["extra"],
    "omt": ["chek"],
    "omt check": ["/nonexistent/spec.omt"],
    "omt doc": ["no_such_spec"],
    "omt fmt": ["/nonexistent/spec.omt"],
    "omt graph": ["00_escrow_lock", "--actor", "Nobody"],
    "omt lint": ["no_such_spec"],
    "omt run": ["00_escrow_lock", "--scenario", "no_such_scenario"],
    "omt specs": ["extra"],
    "peers": ["--network"],
    "ping": [PEER, "--count", "0"],
    "plugins": ["--plugins", "nosuch"],
    "relay": ["stauts"],
    "relay clients": [],
    "relay peers": [],
    "relay status": [],
    "status": [],
    "transport": ["restrat"],
    "transport restart": ["--new-port=yes"],
    "udp": ["peerz"],
    "udp identify": ["notanendpoint"],
    "udp peers": ["extra"],
    "vm": ["craete"],
    "vm cleanup": ["extra"],
    "vm create": ["--image", "omk-test", "--vcpus", "0"],
    "vm destroy": [],
    "vm image": ["biuld"],
    "vm image build": ["--name"],
    "vm exec": [],
    "vm hosted": ["extra"],
    "vm inspect": [],
    "vm list": [],
    "vm preempt": [],
    "vm release": [],
    "vm renew": ["0d85", "0"],
    "vm request": ["--cpu", "0"],
    "vm show": [],
    "vm ssh": [],
    "vm topup": [],
    "vpn": ["stauts"],
    "vpn attach": ["0d85"],
    "vpn detach": [],
    "vpn status": ["extra"],
}

EXCEPTION_NAME = re.compile(r"Traceback|\b[A-Z][A-Za-z]*(Error|Exception)\b")


def command_paths() -> Iterator[str]:
    def walk(command: click.Command, path: tuple[str, ...], ctx: click.Context) -> Iterator[str]:
        yield " ".join(path)
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                yield from walk(sub, (*path, name), click.Context(sub, parent=ctx, info_name=name))

    yield from walk(main, (), click.Context(main, info_name="omerta"))


ALL_PATHS = sorted(command_paths())


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment with its own (empty) state and configuration, no node running."""
    for name in list(os.environ):
        if name.startswith("OMERTA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return dict(os.environ)


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, args, prog_name="omerta")


def check_one_line_error(code: int, stderr: str) -> None:
    assert code != 0
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: ")
    assert not EXCEPTION_NAME.search(stderr), stderr


def test_the_wrong_argument_table_names_every_command() -> None:
    assert set(WRONG) == set(ALL_PATHS)


@pytest.mark.parametrize("path", ALL_PATHS, ids=lambda p: p or "omerta")
def test_help(path: str, isolated: dict[str, str]) -> None:
    result = invoke([*path.split(), "--help"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"Usage: omerta {path}".rstrip())
    assert result.stderr == ""


@pytest.mark.parametrize("path", ALL_PATHS, ids=lambda p: p or "omerta")
def test_one_wrong_argument(path: str, isolated: dict[str, str]) -> None:
    result = invoke([*path.split(), *WRONG[path]])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    check_one_line_error(result.exit_code, result.stderr)


@pytest.mark.parametrize("path", ["node", "vm create", "udp identify", "network create"])
def test_one_wrong_argument_in_a_real_process(path: str, isolated: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "omerta_core", *path.split(), *WRONG[path]],
        capture_output=True,
        text=True,
        env=isolated,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    check_one_line_error(result.returncode, result.stderr)
