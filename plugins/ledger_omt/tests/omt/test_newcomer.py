"""What a newcomer meets in ``omerta omt``: errors at the mistake, hints naming the right command, --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from omerta_ledger_omt.omt.errors import OmtSyntaxError
from omerta_ledger_omt.omt.loader import shipped_specs_dir
from omerta_ledger_omt.omt.parser import parse

from omerta_core.cli import main

VALID = "message A from X to [Y] ( n uint )\nactor X (\n  state I initial\n  state D terminal\n  I -> D auto\n)\n"


def omt(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["omt", *args], prog_name="omerta")
    return result.exit_code, result.stdout, result.stderr


def syntax_error(source: str) -> OmtSyntaxError:
    with pytest.raises(OmtSyntaxError) as info:
        parse(source, "t.omt")
    return info.value


def test_a_missing_paren_is_reported_where_it_is_missing() -> None:
    err = syntax_error(VALID.replace("( n uint )", "( n uint"))
    assert (err.line, err.column) == (1, 33)
    assert err.message == "missing ')' to close the '(' opened at line 1, column 25"


@pytest.mark.parametrize(
    ("typo", "keyword", "line", "column"),
    [("  stat D terminal", "state", 4, 3), ("mesage A from", "message", 1, 1)],
)
def test_a_mistyped_keyword_is_reported_at_the_word_with_a_suggestion(
    typo: str, keyword: str, line: int, column: int
) -> None:
    source = VALID.replace("  state D terminal", typo) if "stat " in typo else VALID.replace("message A from", typo)
    err = syntax_error(source)
    word = typo.split(maxsplit=1)[0]
    assert err.message == f"unknown keyword {word!r}; did you mean {keyword!r}?"
    assert (err.line, err.column) == (line, column)


def test_an_unknown_target_state_is_reported_at_its_name(tmp_path: Path) -> None:
    spec = tmp_path / "t.omt"
    spec.write_text(VALID.replace("I -> D auto", "I -> Dx auto"))
    code, out, _ = omt("check", "--json", str(spec))
    assert code == 1
    (item,) = [d for d in json.loads(out) if d["code"] == "unknown-state"]
    assert (item["line"], item["column"]) == (5, 8)


def test_check_points_at_the_lint_command_that_fixes(tmp_path: Path) -> None:
    spec = tmp_path / "t.omt"
    spec.write_text(VALID.replace("I -> D auto", "I -> Dx auto"))
    _, _, err = omt("check", str(spec))
    assert "1 fixable with `omerta omt lint --fix`" in err
    _, _, err = omt("lint", str(spec))
    assert "1 fixable with `--fix`" in err


def test_doc_and_graph_refuse_a_spec_with_errors(tmp_path: Path) -> None:
    spec = tmp_path / "t.omt"
    spec.write_text(VALID.replace("I -> D auto", "I -> Dx auto"))
    for command in ("doc", "graph"):
        code, out, err = omt(command, str(spec))
        assert code == 1, command
        assert out == ""
        assert err.splitlines()[-1] == "Error: t.omt has 2 error(s); fix them first (`omerta omt check`)"


def test_specs_show_their_paths() -> None:
    code, out, _ = omt("specs")
    assert code == 0
    assert str(shipped_specs_dir() / "00_escrow_lock.omt") in out


def test_fmt_check_shows_the_diff_and_fmt_speaks_json(tmp_path: Path) -> None:
    spec = tmp_path / "t.omt"
    spec.write_text('transaction 1 "t"\nparameters(N=2 count)\nactor A(state S initial terminal)\n')
    code, out, err = omt("fmt", "--check", str(spec))
    assert code == 1
    assert out.startswith(f"--- {spec}\n+++ {spec} (formatted)\n")
    assert "-parameters(N=2 count)" in out
    assert err == "1 of 1 file(s) would be reformatted\n"
    code, out, _ = omt("fmt", "--check", "--json", str(spec))
    assert code == 1
    report = json.loads(out)
    assert [item["path"] for item in report["would_reformat"]] == [str(spec)]
    code, out, _ = omt("fmt", "--json", str(spec))
    assert code == 0 and json.loads(out)["reformatted"][0]["path"] == str(spec)
    assert json.loads(omt("fmt", "--json", str(spec))[1]) == {"reformatted": [], "files": 1}


def test_run_json_is_structured_records() -> None:
    code, out, _ = omt("run", "00_escrow_lock", "-s", "too_few_witnesses", "--json")
    assert code == 0
    result = json.loads(out)
    trace = result["trace"]
    assert all(isinstance(record, dict) for record in trace)
    assert {"at": trace[0]["at"], "kind": "send", "peer": "alice", "to": "bob", "message": "LOCK_INTENT"} in trace
    failed = [r for r in trace if r["kind"] == "state" and r["peer"] == "alice" and r["to"] == "FAILED"]
    assert failed and failed[0]["from"] == "WAITING_FOR_RESULT" and failed[0]["cause"] == "timeout(RESULT_TIMEOUT)"
