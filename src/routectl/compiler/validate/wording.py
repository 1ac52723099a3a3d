"""How diagnostics name what is known: a close match, the short list, or that there is none."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["article", "hint_for"]


def hint_for(name: str, known: Iterable[str], what: str) -> str:
    """A suffix for an unknown `name`: the close match, the known `what` (when few), or ""."""
    import difflib  # only a file with mistakes pays for importing it

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    if close:
        return f" (did you mean '{close[0]}'?)"
    known_list = sorted(known)
    if not known_list:
        return f" (no {what} are defined)"
    if len(known_list) <= 8:
        return f" (known {what}: {', '.join(known_list)})"
    return ""


def article(word: str) -> str:
    """The indefinite article of a scope or owner kind."""
    return "an" if word == "organization" else "a"
