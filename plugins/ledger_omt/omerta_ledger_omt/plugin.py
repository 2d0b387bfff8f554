"""Hook implementations of the ``omt`` plugin, registered through the ``omerta`` entry point.

Gathers the plugin's parts: the ``.omt`` toolchain's command group and the
ledger backend (``omerta_ledger_omt.ledger``). Touches nothing itself.
"""

from __future__ import annotations

from typing import Any

import click

import omerta_core
from omerta_core.records import ServiceRecord
from omerta_ledger_omt.ledger.registration import (
    ledger_commands,
    ledger_config_defaults,
    ledger_control_methods,
    ledger_records,
)
from omerta_ledger_omt.omt.cli import omt_group


@omerta_core.hookimpl
def omerta_services() -> list[ServiceRecord]:
    return ledger_records()


@omerta_core.hookimpl
def omerta_cli_commands() -> list[click.Command]:
    return [*ledger_commands(), omt_group]


@omerta_core.hookimpl
def omerta_control_methods() -> dict[str, Any]:
    return ledger_control_methods()


@omerta_core.hookimpl
def omerta_config_defaults() -> dict[str, Any]:
    return ledger_config_defaults()
