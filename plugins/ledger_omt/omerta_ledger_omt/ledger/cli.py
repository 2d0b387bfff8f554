"""``omerta ledger show|verify|balance|trust|audit|sync``: read and audit chains, balances and trust; sync a node.

With a node running on the state directory the commands ask it over the
control socket; without one, ``show``, ``verify``, ``balance``, ``trust`` and ``audit``
open the chain store directly (``sync`` needs the node). Touches the control
socket or the chain store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from omerta_core import config as config_mod
from omerta_core import identity as identity_mod
from omerta_core.cli import json_option, resolve_state_dir, state_dir_option
from omerta_core.control import client
from omerta_core.interfaces.common import PeerId
from omerta_core.paths import control_socket_path, identity_key_path
from omerta_ledger_omt.ledger import views
from omerta_ledger_omt.ledger.backend import parameters_from
from omerta_ledger_omt.ledger.errors import LedgerError
from omerta_ledger_omt.ledger.local import LocalLedger
from omerta_ledger_omt.ledger.store import ChainStore
from omerta_ledger_omt.ledger.trust import explanation_text


def _query(state_dir: Path | None, method: str, params: dict[str, Any], offline: Callable[[LocalLedger], Any]) -> Any:
    directory = resolve_state_dir(state_dir)
    if control_socket_path(directory).exists():
        return client.call(directory, method, params, timeout=120.0)
    if not identity_key_path(directory).exists():
        raise LedgerError(f"no identity in {directory}: run `omerta id --state-dir {directory}` or start a node")
    config = config_mod.load(overrides={"node.state_dir": str(directory)})
    store = ChainStore(directory / "plugins" / "omt", parameters_from(config.plugin("omt")), must_exist=True)
    try:
        return offline(LocalLedger(identity_mod.load_or_create(directory), store))
    finally:
        store.close()


def _peer(text: str | None) -> str | None:
    return str(PeerId(text)) if text else None


@click.group(name="ledger")
def ledger_group() -> None:
    """Chains, balances, escrow and trust of the per-peer ledger (plugin omt)."""


@ledger_group.command(name="show")
@click.argument("peer", required=False)
@click.option("--start", default=0, show_default=True, help="First sequence number to show.")
@click.option("--limit", default=views.DEFAULT_SHOW_LIMIT, show_default=True, help="Most blocks to show.")
@state_dir_option
@json_option
def show_command(peer: str | None, start: int, limit: int, state_dir: Path | None, as_json: bool) -> None:
    """Show the blocks of PEER's chain (this node's own chain by default)."""
    owner = _peer(peer)
    params = {"peer": owner, "start": start, "limit": limit}
    result = _query(state_dir, "ledger.show", params, lambda led: views.show(led, owner, start, limit))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    head = result["head"]
    click.echo(f"chain {result['owner']}  head #{head['seq'] if head else '-'}  held up to #{result['held_max_seq']}")
    for block in result["blocks"]:
        payload = json.dumps(block["payload"], sort_keys=True)
        click.echo(f"#{block['seq']:<5} {block['kind']:<18} {block['hash'][:16]}  {payload[:100]}")


@ledger_group.command(name="verify")
@state_dir_option
@json_option
def verify_command(state_dir: Path | None, as_json: bool) -> None:
    """Re-check every held block's signature and links, every chain's rules, and the SQLite file."""
    result = _query(state_dir, "ledger.verify", {}, views.verify)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(
            f"{result['blocks_checked']} blocks in {result['chains']} chains checked; "
            f"sqlite integrity: {result['sqlite_integrity']}; proofs held: {result['proofs']}"
        )
        for owner, problem in result["problems"].items():
            click.echo(f"  {owner[:12]}: {problem}")
    if result["problems"] or result["sqlite_integrity"] != "ok":
        raise SystemExit(1)


@ledger_group.command(name="balance")
@click.argument("peer", required=False)
@state_dir_option
@json_option
def balance_command(peer: str | None, state_dir: Path | None, as_json: bool) -> None:
    """Balances derived from the chains held (of PEER, or of every chain with a supply audit)."""
    owner = _peer(peer)
    result = _query(state_dir, "ledger.balance", {"peer": owner}, lambda led: views.balances(led, owner))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{'PEER':<14}{'BALANCE':>12}{'LOCKED':>10}{'BURNED':>10}{'HEAD':>7}")
    for name, row in sorted(result["balances"].items()):
        click.echo(f"{name[:12]:<14}{row['balance']:>12}{row['locked']:>10}{row['burned']:>10}{row['head_seq']:>7}")
    if "supply" in result:
        click.echo("supply: " + ", ".join(f"{k} {v}" for k, v in result["supply"].items()))


@ledger_group.command(name="trust")
@click.argument("peer")
@click.option("--explain", is_flag=True, help="Show each input (path, evidence, age, cluster, misbehaviour).")
@state_dir_option
@json_option
def trust_command(peer: str, explain: bool, state_dir: Path | None, as_json: bool) -> None:
    """This node's trust in PEER (0..1); --explain shows how the number was reached."""
    subject = str(PeerId(peer))
    result = _query(state_dir, "ledger.trust", {"peer": subject}, lambda led: views.trust(led, subject))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    lines = explanation_text(result)
    for line in lines if explain else lines[:1]:
        click.echo(line)


@ledger_group.command(name="audit")
@click.argument("peer", required=False)
@state_dir_option
@json_option
def audit_command(peer: str | None, state_dir: Path | None, as_json: bool) -> None:
    """Audit PEER's chain as held here (this node's own by default): every block, replay, proofs.

    Exits 1 when a discrepancy is found.
    """
    subject = _peer(peer)
    result = _query(state_dir, "ledger.audit_chain", {"peer": subject},
                    lambda led: views.audit(led, subject or led.me))  # fmt: skip
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(
            f"{result['subject'][:12]}: {result['blocks_checked']} blocks checked, head #{result['head_seq']}, "
            f"balance {result['balance']}, locked {result['locked']}; audit {result['audit_hash'][:16]}"
        )
        for finding in result["discrepancies"]:
            against = f" (proof against {finding['against'][:12]})" if finding["against"] else ""
            where = "" if finding["seq"] is None else f" at #{finding['seq']}"
            click.echo(f"  {finding['kind']}{where}: {finding['detail']}{against}")
    if result["discrepancies"]:
        raise SystemExit(1)


@ledger_group.command(name="sync")
@click.argument("peers", nargs=-1)
@click.option("--timeout", type=float, default=None, help="Seconds per peer [default: ledger_sync_timeout_s].")
@state_dir_option
@json_option
def sync_command(peers: tuple[str, ...], timeout: float | None, state_dir: Path | None, as_json: bool) -> None:
    """Ask the running node to sync chains now with PEERS (default: every peer discovery knows)."""
    directory = resolve_state_dir(state_dir)
    params = {"peers": [str(PeerId(p)) for p in peers], "timeout": timeout}
    result = client.call(directory, "ledger.sync", params, timeout=600.0)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    if not result:
        click.echo("no peers to sync with")
    for peer, summary in result.items():
        error = f"  error: {summary['error']}" if "error" in summary else ""
        click.echo(
            f"{peer[:12]}  received {summary.get('blocks_received', 0)}  added {summary.get('blocks_added', 0)}"
            f"  rejected {summary.get('blocks_rejected', 0)}  forks {summary.get('forks', 0)}{error}"
        )


COMMANDS = [ledger_group]
