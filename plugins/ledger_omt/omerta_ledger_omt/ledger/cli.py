"""``omerta ledger``: read and audit chains, balances and trust; sync; transfer, lock, top up and settle; query;
audit a peer between nodes, health-check it, and verify a published audit offline.

With a node running on the state directory the commands ask it over the
control socket; without one, ``show``, ``verify``, ``balance``, ``trust`` and ``audit``
open the chain store directly (``sync`` and the operations need the node).
Peer ids may be given as any unique prefix. Touches the control socket or the
chain store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import click

from omerta_core import config as config_mod
from omerta_core import identity as identity_mod
from omerta_core.cli import json_option, resolve_state_dir, state_dir_option
from omerta_core.console import progress
from omerta_core.control import client
from omerta_core.ids import resolve_prefix
from omerta_core.interfaces.common import PeerId
from omerta_core.paths import control_socket_path, identity_key_path
from omerta_ledger_omt.ledger import views
from omerta_ledger_omt.ledger.backend import parameters_from
from omerta_ledger_omt.ledger.errors import LedgerError
from omerta_ledger_omt.ledger.local import LocalLedger
from omerta_ledger_omt.ledger.misuse import load_evidence
from omerta_ledger_omt.ledger.state_query import QUERIES
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


def _offline_peer(led: LocalLedger, text: str | None) -> str | None:
    """Without a node: a full peer id, or the one chain held whose owner starts with ``text``."""
    if not text:
        return None
    try:
        return str(PeerId(text))
    except ValueError:
        return resolve_prefix(text, led.store.owners(), "peer")


#: Escrow operations wait for witnesses; the node's own timeouts bound them, this bounds the wait for a reply.
OPERATION_TIMEOUT_S = 300.0


def _operate(state_dir: Path | None, title: str, method: str, params: dict[str, Any]) -> Any:
    with progress(title) as note:
        return client.call(resolve_state_dir(state_dir), method, params, timeout=OPERATION_TIMEOUT_S, on_progress=note)


def _print_result(result: dict[str, Any], as_json: bool, what: str = "") -> None:
    """Print an operation's result; one that ended FAILED exits 1 with its reason on one line."""
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            click.echo(f"{key:<14} {json.dumps(value) if isinstance(value, dict | list) else value}")
    if what and result.get("state") == "FAILED":
        reason = result.get("reason") or str(result.get("failure_reason") or "see the output above").replace("_", " ")
        raise click.ClickException(f"{what} failed: {reason}")


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
    params = {"peer": peer, "start": start, "limit": limit}
    result = _query(
        state_dir, "ledger.show", params, lambda led: views.show(led, _offline_peer(led, peer), start, limit)
    )
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
    result = _query(
        state_dir, "ledger.balance", {"peer": peer}, lambda led: views.balances(led, _offline_peer(led, peer))
    )
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
    result = _query(
        state_dir, "ledger.trust", {"peer": peer}, lambda led: views.trust(led, str(_offline_peer(led, peer)))
    )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    lines = explanation_text(result)
    for line in lines if explain else lines[:1]:
        click.echo(line)


@ledger_group.command(name="audit")
@click.argument("peer", required=False)
@click.option(
    "--network",
    is_flag=True,
    help="Run transaction 04 between nodes: fetch PEER's chain from it, ask its counterparties, publish the result.",
)
@state_dir_option
@json_option
def audit_command(peer: str | None, network: bool, state_dir: Path | None, as_json: bool) -> None:
    """Audit PEER's chain as held here (this node's own by default): every block, replay, proofs.

    With --network the running node fetches PEER's chain from PEER itself and records the result
    (an audit_result block whose proofs anyone checks with `omerta ledger verify-audit`).
    Exits 1 when a discrepancy is found.
    """
    if network:
        if not peer:
            raise click.UsageError("--network needs the PEER to audit")
        outcome = _operate(state_dir, f"auditing {peer} between nodes", "ledger.audit_peer", {"peer": peer})
        if outcome["state"] != "COMPLETE" or not outcome["result"]:
            _print_result(outcome, as_json)
            raise click.ClickException(f"audit of {peer} did not complete: {outcome['state']}")
        result = outcome["result"]
    else:
        result = _query(
            state_dir,
            "ledger.audit_chain",
            {"peer": peer},
            lambda led: views.audit(led, _offline_peer(led, peer) or led.me),
        )
    if as_json:
        click.echo(json.dumps(result, indent=2))
    elif "blocks_checked" not in result:  # the subject never answered
        click.echo(f"{result['subject'][:12]}: did not answer the audit")
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


@ledger_group.command(name="check")
@click.argument("peer")
@click.option("--cabal", "cabal", multiple=True, help="A cabal member (repeat; default: three of the chains held).")
@state_dir_option
@json_option
def check_command(peer: str, cabal: tuple[str, ...], state_dir: Path | None, as_json: bool) -> None:
    """Health-check PEER (transaction 05): refused unless it is due; each cabal member audits it.

    Exits 1 when the check was refused or did not finish.
    """
    params = {"peer": peer, "cabal": list(cabal) or None}
    result = _operate(state_dir, f"health-checking {peer} (the cabal audits it)", "ledger.health_check", params)
    _print_result(result, as_json)
    if result["state"] != "CHECKED":
        reason = str(result.get("failure_reason") or result["state"]).replace("_", " ")
        raise click.ClickException(f"health check of {peer} refused: {reason}")


@ledger_group.command(name="suspicion")
@click.argument("peer")
@state_dir_option
@json_option
def suspicion_command(peer: str, state_dir: Path | None, as_json: bool) -> None:
    """How suspicious PEER is here, when it was last health-checked, and whether a check is due."""
    result = _operate(state_dir, "reading suspicion", "ledger.suspicion", {"peer": peer})
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(f"{result['peer'][:12]}: suspicion {result['suspicion']:.3f}; {result['reason']}")


@ledger_group.command(name="verify-audit")
@click.argument("source", type=click.File("r"))
@click.option("--params-from", "state_dir", type=click.Path(path_type=Path), help="State directory whose config "
              "gives the network's parameters (mint authorities) [default: the usual one].")  # fmt: skip
@json_option
def verify_audit_command(source: TextIO, state_dir: Path | None, as_json: bool) -> None:
    """Check every proof of a published audit with nothing but the network's parameters.

    SOURCE ('-' for stdin) holds an audit_result block in hex, or the JSON that `omerta ledger audit
    PEER --network --json` printed. Exits 1 if a proof does not hold.
    """
    text = source.read().strip()
    try:
        audit: Any = text if not text.startswith("{") else json.loads(text)
    except ValueError as exc:
        raise click.ClickException(f"{source.name} is neither a block in hex nor JSON: {exc}") from exc
    directory = resolve_state_dir(state_dir)
    config = config_mod.load(overrides={"node.state_dir": str(directory)})
    result = views.verify_audit(parameters_from(config.plugin("omt")), audit)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        who = f" by {result['auditor'][:12]}" if result["auditor"] else ""
        click.echo(f"audit of {str(result['subject'])[:12]}{who}: {result['proven']} proof(s) hold")
        for row in result["discrepancies"]:
            proof = row["proof"] or "no proof"
            against = f" against {row['against'][:12]}" if row.get("against") else ""
            click.echo(f"  {row['kind']}: {proof}{against}{' ' + row['reason'] if 'reason' in row else ''}")
    if result["invalid"]:
        raise SystemExit(1)


@ledger_group.command(name="sync")
@click.argument("peers", nargs=-1)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds per peer [default: ledger_sync_timeout_s].",
)
@state_dir_option
@json_option
def sync_command(peers: tuple[str, ...], timeout: float | None, state_dir: Path | None, as_json: bool) -> None:
    """Ask the running node to sync chains now with PEERS (default: every peer discovery does not know dead).

    Exit 1 when a sync with any peer failed.
    """
    result = _operate(state_dir, "syncing chains", "ledger.sync", {"peers": list(peers), "timeout": timeout})
    failed = [peer for peer, summary in result.items() if "error" in summary]
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        if not result:
            click.echo("no peers to sync with (discovery knows none alive)")
        for peer, summary in result.items():
            error = f"  error: {summary['error']}" if "error" in summary else ""
            click.echo(
                f"{peer[:12]}  received {summary.get('blocks_received', 0)}  added {summary.get('blocks_added', 0)}"
                f"  rejected {summary.get('blocks_rejected', 0)}  forks {summary.get('forks', 0)}{error}"
            )
    if failed:
        raise click.ClickException(f"sync failed with {len(failed)} of {len(result)} peer(s)")


@ledger_group.command(name="transfer")
@click.argument("peer")
@click.argument("amount", type=click.IntRange(min=1))
@state_dir_option
@json_option
def transfer_command(peer: str, amount: int, state_dir: Path | None, as_json: bool) -> None:
    """Transfer AMOUNT to PEER: a proposal on this chain that PEER's node agrees to when it syncs."""
    _print_result(_operate(state_dir, "transferring", "ledger.transfer", {"to": peer, "amount": amount}), as_json)


@ledger_group.command(name="lock")
@click.argument("provider")
@click.argument("amount", type=click.IntRange(min=1))
@click.option(
    "--rate",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Hourly rate agreed with the provider, signed in the request (a claim may name it).",
)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds to wait for the witnesses.")
@state_dir_option
@json_option
def lock_command(provider: str, amount: int, rate: int, timeout: float | None, state_dir: Path | None,
                 as_json: bool) -> None:  # fmt: skip
    """Lock AMOUNT in escrow for PROVIDER (transaction 00); prints the session to top up and settle."""
    params = {"provider": provider, "amount": amount, "hourly_rate": rate, "timeout": timeout}
    _print_result(_operate(state_dir, "locking escrow (waiting for witnesses)", "ledger.lock", params), as_json, "lock")


def _topup_command(name: str, summary: str) -> click.Command:
    """``topup`` and ``renew``: one round (transaction 00's top-up), two names a user may look for."""

    @click.argument("session")
    @click.argument("amount", type=click.IntRange(min=1))
    @click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds to wait for the witnesses.")
    @state_dir_option
    @json_option
    def command(session: str, amount: int, timeout: float | None, state_dir: Path | None, as_json: bool) -> None:
        params = {"session": session, "amount": amount, "timeout": timeout}
        result = _operate(state_dir, "topping up escrow (waiting for witnesses)", "ledger.topup", params)
        _print_result(result, as_json, "top-up")

    return click.command(name=name, help=summary)(command)


ledger_group.add_command(
    _topup_command("topup", "Add AMOUNT to the escrow of lock SESSION (transaction 00's top-up round).")
)
ledger_group.add_command(
    _topup_command("renew", "Renew SESSION for longer use: top its escrow up by AMOUNT (the same round as `topup`).")
)


@ledger_group.command(name="settle")
@click.argument("session")
@click.option("--rate", "hourly_rate", type=click.IntRange(min=0), required=True, help="Price per hour of use.")
@click.option(
    "--duration-ms", type=click.IntRange(min=0), help="Milliseconds used [default: what the witnesses attested]."
)
@state_dir_option
@json_option
def settle_command(
    session: str, hourly_rate: int, duration_ms: int | None, state_dir: Path | None, as_json: bool
) -> None:
    """Settle lock SESSION (transaction 02): pay the provider for the time used, refund the rest."""
    params = {"session": session, "hourly_rate": hourly_rate, "duration_ms": duration_ms}
    _print_result(
        _operate(state_dir, "settling (waiting for witnesses)", "ledger.settle", params), as_json, "settlement"
    )


@ledger_group.command(name="query")
@click.argument("peer")
@click.option(
    "--what", type=click.Choice(QUERIES), default="balance", show_default=True, help="What to ask about PEER."
)
@click.option("--witness", "witnesses", multiple=True, help="A witness to ask (repeat) [default: most trusted peers].")
@click.option(
    "--min-confidence",
    type=click.Choice(["LOW", "MEDIUM", "HIGH"]),
    default="LOW",
    show_default=True,
    help="Count only answers at least this confident.",
)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds to wait for the answers.")
@state_dir_option
@json_option
def query_command(
    peer: str,
    what: str,
    witnesses: tuple[str, ...],
    min_confidence: str,
    timeout: float | None,
    state_dir: Path | None,
    as_json: bool,
) -> None:
    """Ask witnesses about PEER's state (transaction 03): a value a threshold agrees on, or a failed query.

    Each witness answers from the chain it holds with a confidence set by how recently it synced PEER;
    a node nobody has seen is "unknown", never zero. A confident answer about the chain that the chain
    contradicts is proven false, and this node records an accusation carrying the proof.
    """
    params = {"peer": peer, "what": what, "witnesses": list(witnesses), "min_confidence": min_confidence,
              "timeout": timeout}  # fmt: skip
    result = _operate(state_dir, "asking witnesses", "ledger.query", params)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(query_text(result))
    if result.get("state") == "FAILED":
        reason = str(result.get("failure_reason") or "the witnesses did not agree").replace("_", " ")
        raise click.ClickException(f"query failed: {reason}")


def query_text(result: dict[str, Any]) -> str:
    """A state query's result for people: the agreed value, then each witness's answer."""
    agreed = sum(1 for a in result["answers"] if a["agreed"])
    if result["state"] == "ATTESTED":
        head = f"{result['query']} of {result['subject'][:12]}: {result['value']} ({result['confidence']}, "
        lines = [head + f"agreed by {agreed} of {len(result['witnesses'])} witnesses)"]
    else:
        lines = [f"{result['query']} of {result['subject'][:12]}: no agreement"]
    for answer in result["answers"]:
        mark = "agrees" if answer["agreed"] else "differs"
        lines.append(f"  {answer['witness'][:12]}  {answer['value']!s:<20} {answer['confidence']:<6} "
                     f"at #{answer['head_seq']}  {mark}")  # fmt: skip
    for proven in result["false_answers"]:
        lines.append(f"  {proven['witness'][:12]} answered falsely: proven, accusation {proven['accusation']}")
    return "\n".join(lines)


@ledger_group.command(name="accuse")
@click.argument("session")
@click.option(
    "--evidence",
    "evidence_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="JSON file with the misuse evidence (format in docs/ledger.md, misuse trial).",
)
@state_dir_option
@json_option
def accuse_command(session: str, evidence_path: Path, state_dir: Path | None, as_json: bool) -> None:
    """As provider, accuse the consumer of VM session SESSION of misuse (spec 01's trial).

    The lock's witnesses judge the evidence; if enough find misuse the session ends (CONSUMER_MISUSE) and is
    attested for settlement, otherwise the VM runs on and the false accusation costs this node trust.
    """
    params = {"session": session, "evidence": load_evidence(evidence_path)}
    _print_result(_operate(state_dir, "accusing (waiting for the witnesses' votes)", "ledger.accuse", params),
                  as_json, "trial")  # fmt: skip


COMMANDS = [ledger_group]
