"""The main job as a test: the demo's rental in the NAT lab, with real nodes and a real guest under TCG.

Runs what ``scripts/demo`` runs (``scripts/demo_lab.py``: a public bootstrap with a relay, five
witnesses, a provider and a consumer behind different NATs, the consumer as ``nobody``) and checks
what the demo only prints: the command's output comes back from the guest over SSH, after release the
VM's artefacts are gone, the parties' balances moved by the settlement, and every node's view of the
chains (both parties' and every witness's) agrees on it. Everything the lab made is removed, also on
failure; the test checks that too.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(900)]

#: The scene, what the tour saw, and every line the demo printed.
Toured = tuple[Any, Any, list[str]]


@pytest.fixture(scope="module")
def toured(rental_lab: Any) -> Toured:
    """The lab of ``conftest.rental_lab`` after the demo's tour."""
    return rental_lab.scene, rental_lab.demo.tour(rental_lab.scene, rental_lab.timeline), rental_lab.said


def test_the_command_output_comes_back_from_the_guest(toured: Toured) -> None:
    _, result, _ = toured
    assert result.exec_returncode == 0, result.exec_output
    # the guest's own kernel and host name: the test guest names itself after its VM id
    assert result.exec_output.startswith(f"Linux omerta-{result.vm_id[:8]} "), result.exec_output


def test_the_consumer_reached_the_vm_through_its_vpn(toured: Toured) -> None:
    scene, result, _ = toured
    shown = scene.node("consumer").call("rental.show", {"rental": result.rental})
    assert shown["address"] == "198.18.255.2" and shown["outcome"] == "released"
    assert result.routes["consumer->provider"] not in ("none", "None")


def test_after_release_the_vm_and_its_artefacts_are_gone(toured: Toured) -> None:
    scene, result, _ = toured
    assert result.vm_id and result.leftovers == []
    vms = scene.workdir / "provider" / "plugins" / "kvm" / "vms"
    assert not vms.exists() or not any(vms.iterdir())


def test_both_parties_and_every_witness_agree_on_the_settlement(toured: Toured, rental_lab: Any) -> None:
    scene, result, _ = toured
    split = result.settlement
    demo = rental_lab.demo
    escrow = demo.PRICE * float(demo.LEASE_HOURS)
    assert split["settled"] and split["provider_payment"] + split["burn"] + split["refund"] == escrow
    assert split["duration_ms"] > 0 and split["refund"] > 0
    assert set(result.views) == {"boot", "provider", "consumer", *scene.witnesses}
    assert all(view == result.views["boot"] for view in result.views.values()), "the chains disagree"
    consumer, provider = scene.ids["consumer"], scene.ids["provider"]
    before, after = result.before, result.views["boot"]
    assert after[consumer]["balance"] == before[consumer]["balance"] - split["provider_payment"] - split["burn"]
    assert after[provider]["balance"] == before[provider]["balance"] + split["provider_payment"]
    assert after[consumer]["locked"] == 0


def test_every_step_was_printed_with_its_time(toured: Toured) -> None:
    _, _, said = toured
    for step in ("lab", "nodes", "gossip", "funds", "offer", "request", "exec", "release", "settled"):
        assert any(f"  {step}: done in " in line for line in said), step
