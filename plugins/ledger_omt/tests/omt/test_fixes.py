"""Lint-and-fix corpus of the reference report (§5.3): applying fixes and choosing them."""

from __future__ import annotations

from omerta_ledger_omt.omt.diagnostics import Fix, apply_fixes, obvious_fix, similar


def test_fix_on_first_line() -> None:
    assert apply_fixes("IDEL -> DONE auto", [Fix(1, 1, "IDEL", "IDLE")]) == ("IDLE -> DONE auto", 1)


def test_two_fixes_on_one_line_both_apply() -> None:
    text, n = apply_fixes("IDEL -> DOEN auto", [Fix(1, 1, "IDEL", "IDLE"), Fix(1, 9, "DOEN", "DONE")])
    assert (text, n) == ("IDLE -> DONE auto", 2)


def test_fixes_on_different_lines_apply() -> None:
    text, n = apply_fixes("A -> B auto\nC -> D auto", [Fix(1, 1, "A", "X"), Fix(2, 6, "D", "Y")])
    assert (text, n) == ("X -> B auto\nC -> Y auto", 2)


def test_fix_replaces_whole_words_only() -> None:
    assert apply_fixes("IDLE_STATE -> IDLE", [Fix(1, 1, "IDLE", "READY")])[0] == "IDLE_STATE -> READY"


def test_fix_without_position_is_skipped() -> None:
    assert apply_fixes("IDEL -> DONE", [Fix(0, 0, "IDEL", "IDLE"), Fix(9, 1, "IDEL", "IDLE")]) == ("IDEL -> DONE", 0)


def test_choosing_a_fix() -> None:
    assert obvious_fix("REQUET", ["REQUEST", "RESPONSE"], 1, 1) == Fix(1, 1, "REQUET", "REQUEST")
    assert obvious_fix("IDEL", ["IDLE", "COMPLETED"], 1, 1) == Fix(1, 1, "IDEL", "IDLE")
    assert obvious_fix("STAT", ["STATE", "START"], 1, 1) is None  # ambiguous
    assert obvious_fix("ZZZZZZ", ["IDLE", "DONE"], 1, 1) is None  # far from everything
    assert obvious_fix("requet", ["REQUEST"], 1, 1) == Fix(1, 1, "requet", "REQUEST")
    # ours: the original proposed MIN -> f; far names never become fixes.
    assert obvious_fix("MIN", ["f"], 1, 1) is None


def test_case_only_difference_is_suggested_first() -> None:
    assert similar("request", ["REQUEST", "REQUESTS"])[0] == "REQUEST"


def test_one_letter_names_are_not_typos_of_each_other() -> None:
    assert obvious_fix("Q", ["S"], 1, 1) is None
