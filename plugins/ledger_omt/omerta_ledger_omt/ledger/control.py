"""Control-API methods of the ``omt`` ledger for a running node.

``ledger.show|balance|trust|verify|sync|run|audit|audit_chain`` read, audit and sync chains;
``ledger.lock`` runs transaction 00 as the consumer; ``ledger.vm_start`` (provider) and ``ledger.attest``
(consumer or provider, ending the session) run transaction 01; ``ledger.settle`` settles a lock
through transaction 02, for the attested duration unless ``duration_ms`` is given; ``ledger.query`` asks
witnesses about another node's state through transaction 03.
``ledger.audit_peer`` audits a peer between nodes (transaction 04) and publishes the result;
``ledger.health_check`` asks a cabal for a health check (transaction 05); ``ledger.suspicion`` says how
suspicious a peer is and whether it is due; ``ledger.verify_audit`` checks a published audit's proofs
with the network's parameters alone.

Each receives the node and the request's params and reaches the running
backend through ``node.service(Ledger, "omt")``. Touches what the backend touches.
"""

from __future__ import annotations

from typing import Any

from omerta_core.ids import resolve_prefix
from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.ledger import Ledger
from omerta_core.node import NodeContext
from omerta_ledger_omt.ledger import views
from omerta_ledger_omt.ledger.backend import OmtLedger, block_summary, now_ms
from omerta_ledger_omt.ledger.errors import LedgerError


def _backend(node: NodeContext) -> OmtLedger:
    backend = node.service(Ledger, "omt")
    if not isinstance(backend, OmtLedger):
        raise LedgerError("this node's ledger is not the omt ledger")
    return backend


def known_ids(backend: OmtLedger) -> set[str]:
    """Every peer id a prefix may name: chains held and peers discovery knows."""
    return {*backend.ledger.store.owners(), *backend.known_peers(), backend.ledger.me}


def peer_arg(backend: OmtLedger, text: Any) -> str:
    """A full peer id, or the one known peer whose id starts with ``text``."""
    if not isinstance(text, str) or not text:
        raise LedgerError("a peer id (or a unique prefix of one) is required")
    try:
        return str(PeerId(text))
    except ValueError:
        return resolve_prefix(text, known_ids(backend), "peer")


def _peer(node: NodeContext, params: dict[str, Any]) -> str | None:
    value = params.get("peer")
    return peer_arg(_backend(node), value) if value else None


def _amount(params: dict[str, Any]) -> int:
    amount = params.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise LedgerError(f"amount must be a whole number above 0, got {amount!r}")
    return amount


def show(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    start = int(params.get("start", 0))
    limit = int(params.get("limit", views.DEFAULT_SHOW_LIMIT))
    return views.show(_backend(node).ledger, _peer(node, params), start, limit)


def balance(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    return views.balances(_backend(node).ledger, _peer(node, params))


def trust(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    peer = _peer(node, params)
    if peer is None:
        raise LedgerError("ledger.trust needs a peer")
    return views.trust(_backend(node).ledger, peer)


def verify(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    return views.verify(_backend(node).ledger)


async def sync(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    backend = _backend(node)
    peers = [peer_arg(backend, p) for p in params.get("peers") or []]
    timeout = params.get("timeout")
    return await backend.sync_all(peers or None, None if timeout is None else float(timeout))


async def run(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    return await _backend(node).run_transaction(str(params["name"]), dict(params.get("params") or {}))


def transfer(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    """Propose a transfer of ``amount`` to ``to`` (an id or a unique prefix) on this node's chain."""
    backend = _backend(node)
    to = peer_arg(backend, params.get("to"))
    if to == backend.ledger.me:
        raise LedgerError("a transfer to yourself changes nothing")
    block = backend.ledger.transfer(to, _amount(params), now_ms())
    return block_summary(block)


async def lock(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    timeout = params.get("timeout")
    backend = _backend(node)
    rate = params.get("hourly_rate", 0)
    if type(rate) is not int or rate < 0:
        raise LedgerError(f"hourly_rate must be a whole number of units of 0 or more, got {rate!r}")
    return await backend.lock(
        peer_arg(backend, params.get("provider")), _amount(params), None if timeout is None else float(timeout), rate
    )


async def topup(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    timeout = params.get("timeout")
    return await _backend(node).topup(
        str(params["session"]), _amount(params), None if timeout is None else float(timeout)
    )


async def settle(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    duration = params.get("duration_ms")
    return await _backend(node).settle(
        str(params["session"]), None if duration is None else int(duration), int(params["hourly_rate"])
    )


async def vm_start(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    endpoint = params.get("vm_endpoint")
    return await _backend(node).start_vm(str(params["session"]), None if endpoint is None else str(endpoint))


async def attest(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    return await _backend(node).attest(str(params["session"]))


async def query(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    """Ask witnesses ``what`` about ``peer`` (transaction 03); ``witnesses`` defaults to the most trusted live peers."""
    backend = _backend(node)
    subject = peer_arg(backend, params.get("peer"))
    witnesses = [peer_arg(backend, w) for w in params.get("witnesses") or []]
    timeout = params.get("timeout")
    return await backend.query(
        subject,
        str(params.get("what", "balance")),
        witnesses or None,
        str(params.get("min_confidence", "LOW")),
        None if timeout is None else float(timeout),
    )


async def accuse(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    evidence = params.get("evidence")
    if not isinstance(evidence, dict):
        raise LedgerError("ledger.accuse takes the evidence as a JSON object (docs/ledger.md, misuse trial)")
    return await _backend(node).accuse(str(params["session"]), evidence)


def audit(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    return _backend(node).audit()


def audit_chain(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    backend = _backend(node)
    peer = params.get("peer")
    if peer is not None and not isinstance(peer, str):
        raise LedgerError("ledger.audit_chain takes a peer id")
    return views.audit(backend.ledger, peer_arg(backend, peer) if peer else backend.ledger.me)


# -- transactions 04 and 05 (stream 17b) ------------------------------------------------------


def _peers(backend: OmtLedger, value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise LedgerError(f"{what} must be a list of peer ids")
    return [peer_arg(backend, p) for p in value]


async def audit_peer(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    backend = _backend(node)
    subject = peer_arg(backend, params.get("peer"))
    return await backend.audit_peer(subject, _peers(backend, params.get("counterparties"), "counterparties"))


async def health_check(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    backend = _backend(node)
    subject = peer_arg(backend, params.get("peer"))
    return await backend.health_check(subject, _peers(backend, params.get("cabal"), "cabal"))


def suspicion(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    backend = _backend(node)
    return views.suspicion(backend.ledger, peer_arg(backend, params.get("peer")), backend.check_base_ms)


def verify_audit(node: NodeContext, params: dict[str, Any]) -> dict[str, Any]:
    return views.verify_audit(_backend(node).ledger.params, params.get("audit"))


METHODS = {
    "ledger.show": show,
    "ledger.balance": balance,
    "ledger.trust": trust,
    "ledger.verify": verify,
    "ledger.sync": sync,
    "ledger.run": run,
    "ledger.transfer": transfer,
    "ledger.audit": audit,
    "ledger.audit_chain": audit_chain,
    "ledger.lock": lock,
    "ledger.topup": topup,
    "ledger.settle": settle,
    "ledger.vm_start": vm_start,
    "ledger.attest": attest,
    "ledger.query": query,
    "ledger.accuse": accuse,
    "ledger.audit_peer": audit_peer,
    "ledger.health_check": health_check,
    "ledger.suspicion": suspicion,
    "ledger.verify_audit": verify_audit,
}
