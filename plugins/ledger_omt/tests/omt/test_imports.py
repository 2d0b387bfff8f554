"""Imports: resolution from the importing file upwards, cycles, precedence, missing files."""

from __future__ import annotations

from pathlib import Path

import pytest
from omerta_ledger_omt.omt.errors import OmtSyntaxError
from omerta_ledger_omt.omt.linter import lint_file
from omerta_ledger_omt.omt.loader import load_with_imports
from omerta_ledger_omt.omt.runtime import ActorInstance, FireTrigger, MemoryLedger, Program

from omerta_core.identity import Identity


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "common.omt").write_text(
        "imports shared/extra\nparameters ( LIMIT = 1 count )\nfunction double(x uint) -> uint ( RETURN x * 2 )\n"
    )
    (tmp_path / "shared" / "extra.omt").write_text("imports shared/common\nparameters ( UNUSED_HERE = 3 count )\n")
    tx = tmp_path / "transactions" / "07_demo"
    tx.mkdir(parents=True)
    spec = tx / "transaction.omt"
    spec.write_text(
        'transaction 07 "Demo"\nimports shared/common\nparameters ( LIMIT = 5 count )\n'
        "actor A (\n  store ( r uint )\n  trigger go(x uint) in [S]\n  state S initial\n  state D terminal\n"
        "  S -> D on go when x < LIMIT ( r = double(x) )\n)\n"
    )
    return spec


def test_imports_resolve_upwards_cut_cycles_and_local_wins(tmp_path: Path) -> None:
    spec = _tree(tmp_path)
    _, imported = load_with_imports(spec)
    assert sorted(m.parameters[0].name for m in imported) == ["LIMIT", "UNUSED_HERE"]
    program = Program.load(spec)
    assert program.parameter("LIMIT") == 5  # the local declaration overrides the imported one
    ident = Identity.from_seed(b"i" * 32)
    inst = ActorInstance(program, "A", signer=ident, ledger=MemoryLedger(ident.peer_id), session="s")
    inst.handle(FireTrigger("go", {"x": 4}), 0.0)
    assert inst.store["r"] == 8  # imported function
    assert lint_file(spec).errors == 0


def test_missing_import_points_at_the_import_line(tmp_path: Path) -> None:
    spec = tmp_path / "t.omt"
    spec.write_text('transaction 1 "t"\n\nimports nowhere/thing\n')
    with pytest.raises(OmtSyntaxError, match=r"t.omt:3:1: cannot find import 'nowhere/thing'"):
        load_with_imports(spec)
