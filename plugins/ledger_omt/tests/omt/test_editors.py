"""Editor support in contrib/editors: the Pygments lexer and the Vim syntax cover the language."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from omerta_ledger_omt.omt.lexer import ANY_CASE_KEYWORDS, LOWER_KEYWORDS, TOP_LEVEL_KEYWORDS, UPPER_KEYWORDS
from omerta_ledger_omt.omt.loader import shipped_specs_dir
from pygments.token import Error

EDITORS = Path(__file__).resolve().parents[4] / "contrib" / "editors"
KEYWORDS = TOP_LEVEL_KEYWORDS | LOWER_KEYWORDS | ANY_CASE_KEYWORDS | set(UPPER_KEYWORDS) | {"timeout"}


def _lexer() -> object:
    spec = importlib.util.spec_from_file_location("omt_lexer", EDITORS / "pygments" / "omt_lexer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.OmtLexer()


@pytest.mark.parametrize("spec", sorted(p.name for p in shipped_specs_dir().glob("*.omt")))
def test_pygments_lexes_shipped_specs_without_errors(spec: str) -> None:
    text = (shipped_specs_dir() / spec).read_text()
    tokens = list(_lexer().get_tokens(text))  # type: ignore[attr-defined]
    assert not [value for kind, value in tokens if kind in Error]
    assert "".join(value for _, value in tokens).rstrip() == text.rstrip()


def test_vim_syntax_highlights_every_keyword() -> None:
    syntax = (EDITORS / "vim" / "syntax" / "omt.vim").read_text()
    listed = {w for line in syntax.splitlines() if line.startswith("syn keyword") for w in line.split()[3:]}
    assert listed >= KEYWORDS, KEYWORDS - listed
    assert re.search(r"setfiletype omt", (EDITORS / "vim" / "ftdetect" / "omt.vim").read_text())
