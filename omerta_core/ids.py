"""Accept a unique prefix wherever an id is taken, as git and docker do.

Tables show peer ids and VM ids shortened; a user types what they see.
:func:`resolve_prefix` turns such a prefix into the one full id it names, or
says that it names none or several. Pure; touches nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from omerta_core.errors import AmbiguousIdError, UnknownIdError

#: How many candidates an ambiguity message lists before "and N more".
SHOWN_CANDIDATES = 4


def resolve_prefix(text: str, known: Iterable[str], what: str = "id") -> str:
    """The one id of ``known`` that starts with ``text`` (case-insensitive).

    An exact match wins even when it is also a prefix of a longer id.
    Raises :class:`UnknownIdError` or :class:`AmbiguousIdError` with a line
    that says what to type instead.
    """
    wanted = text.strip().lower()
    if not wanted:
        raise UnknownIdError(f"empty {what}: give the {what} or the first few characters of it")
    candidates = sorted({str(k) for k in known})
    if wanted in candidates:
        return wanted
    matches = [c for c in candidates if c.lower().startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UnknownIdError(f"no {what} starts with {text.strip()!r}")
    shown = ", ".join(m[: len(wanted) + 4] + "…" for m in matches[:SHOWN_CANDIDATES])
    more = f" and {len(matches) - SHOWN_CANDIDATES} more" if len(matches) > SHOWN_CANDIDATES else ""
    raise AmbiguousIdError(
        f"{what} prefix {text.strip()!r} is ambiguous: it matches {shown}{more}; type more characters"
    )
