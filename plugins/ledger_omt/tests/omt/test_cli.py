"""``omerta omt`` end to end through the real command line (click runner on the kernel CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from omerta_ledger_omt.omt.loader import shipped_specs_dir

from omerta_core.cli import main

SPECS = sorted(path.stem for path in shipped_specs_dir().glob("*.omt"))


def _omt(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["omt", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("spec", SPECS)
def test_shipped_specs_pass_check_lint_and_fmt(spec: str) -> None:
    assert _omt("check", "--strict", spec)[0] == 0
    assert _omt("lint", "--strict", spec)[0] == 0
    assert _omt("fmt", "--check", str(shipped_specs_dir() / f"{spec}.omt"))[0] == 0


def test_check_reports_position_and_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.omt"
    bad.write_text(
        "message A from X to [Y] ( n uint )\nactor X (\n  state I initial\n  state D terminal\n"
        "  I -> D auto ( SEND(peer_id, B) )\n)\n"
    )
    code, out = _omt("check", str(bad))
    assert code == 1
    assert f"{bad}:5:17: error: SEND of unknown message 'B'" in out


def test_check_json_lists_diagnostics(tmp_path: Path) -> None:
    bad = tmp_path / "bad.omt"
    bad.write_text("actor A ( state S )\n")
    code, out = _omt("check", "--json", str(bad))
    items = json.loads(out)
    assert code == 1
    assert {i["code"] for i in items} >= {"no-initial-state", "no-terminal-state"}
    assert all(i["path"] == str(bad) for i in items)


def test_syntax_error_is_one_line_with_expectation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.omt"
    bad.write_text("parameters ( N = 2\n")
    code, out = _omt("check", str(bad))
    assert code == 1
    assert f"{bad}:1:19: error: unexpected end of file; expected" in out


def test_lint_fix_repairs_typo(tmp_path: Path) -> None:
    src = tmp_path / "t.omt"
    src.write_text(
        'transaction 1 "t"\nactor A (\n    state IDLE initial\n    state DONE terminal\n    IDEL -> DONE auto\n)\n'
    )
    code, _ = _omt("lint", "--fix", str(src))
    assert code == 0
    assert "IDLE -> DONE auto" in src.read_text()


def test_fmt_rewrites_then_is_stable(tmp_path: Path) -> None:
    src = tmp_path / "t.omt"
    src.write_text('transaction 1 "t"\nparameters(N=2 count) # the n\nactor A(state S initial terminal)\n')
    assert _omt("fmt", "--check", str(src))[0] == 1
    assert _omt("fmt", str(src))[0] == 0
    once = src.read_text()
    assert "# the n" in once
    assert _omt("fmt", "--check", str(src))[0] == 0


def test_doc_and_graph_emit_mermaid() -> None:
    code, out = _omt("doc", "01_cabal_attestation")
    assert code == 0
    assert out.count("```mermaid") == 3
    assert "| `VM_ALLOCATED` | Provider | Witness | yes |" in out
    assert "| `ATTESTATION_THRESHOLD` | 3 | count |" in out
    code, out = _omt("graph", "00_escrow_lock", "--actor", "Consumer")
    assert code == 0
    assert "[*] --> IDLE" in out
    assert "FAILED --> [*]" in out


def test_run_prints_trace_and_checks_outcome() -> None:
    code, out = _omt("run", "00_escrow_lock", "-s", "too_few_witnesses")
    assert code == 0
    assert "alice -> bob: LOCK_INTENT" in out
    assert "alice(Consumer): WAITING_FOR_RESULT -> FAILED  [timeout(RESULT_TIMEOUT)]" in out


def test_run_with_scenario_file_reports_unmet_expectation(tmp_path: Path) -> None:
    scenario = {
        "name": "custom",
        "peers": {"w1": "Witness", "w2": "Witness", "w3": "Witness", "alice": "Consumer", "bob": "Provider"},
        "triggers": [
            {
                "at": 0,
                "peer": "alice",
                "trigger": "settle",
                "args": {
                    "provider": "@bob",
                    "witnesses": ["@w1"],
                    "lock_hash": "ab" * 32,
                    "escrow_total": 5,
                    "duration_ms": 1000,
                    "hourly_rate": 1,
                },
            }
        ],
        "expect": {"alice": "SETTLED"},
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(scenario))
    code, out = _omt("run", "02_escrow_settle", "--scenario-file", str(path), "--json")
    assert code == 1
    assert json.loads(out)["states"]["alice"] == "UNSETTLED"


def test_specs_lists_shipped_specs_as_json() -> None:
    code, out = _omt("specs", "--json")
    assert code == 0
    assert [r["name"] for r in json.loads(out)] == SPECS


@pytest.mark.parametrize("spec", SPECS)
def test_generated_spec_documents_are_current(spec: str, tmp_path: Path) -> None:
    """docs/transactions/ holds what ``omerta omt doc`` renders from each shipped spec."""
    out = tmp_path / f"{spec}.md"
    assert _omt("doc", spec, "-o", str(out))[0] == 0
    committed = Path(__file__).resolve().parents[4] / "docs" / "transactions" / f"{spec}.md"
    assert committed.read_text(encoding="utf-8") == out.read_text(encoding="utf-8"), (
        f"run: omerta omt doc {spec} -o {committed}"
    )
