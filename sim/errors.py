"""The one error type for bad input, and the helpers its messages use.

`InputError` names a file, a line, a field and what is wrong; the command line prints its
one line and exits with code 2. `InputErrors` carries several at once (`greatgame check`
lists them). Every layer may raise them. `shorten` and `did_you_mean` keep messages short
and helpful: a value from a file is never echoed whole.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MAX_ECHO = 40
"""Most characters of a value from a file quoted back in a message (then clipped)."""


def shorten(value: Any, limit: int = MAX_ECHO) -> str:
    """Quote a value for a message, clipped: a 5,000-digit number is not echoed whole.

    Args:
        value: The value to quote (its `repr`; integers by their digits).
        limit: The most characters kept.

    Returns:
        The repr itself when short, else its start followed by `…` and its length.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        digits = len(str(abs(value))) if abs(value) < 10 ** 4000 else None
        if digits is not None and digits <= limit:
            return str(value)
        return "a number of more than 4,000 digits" if digits is None else (
            f"a {digits}-digit number")
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit - 1]}… ({len(text)} characters)"


def did_you_mean(word: Any, options: Iterable[str]) -> str:
    """Return ` (did you mean 'x'?)` for the closest option to a misspelt name, or ``.

    Args:
        word: The unknown name as written.
        options: The names that would have been valid.
    """
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


class InputError(ValueError):
    """Bad input, carrying the file, line and field it is about.

    `str(err)` is the one line shown to the user: `FILE:LINE: FIELD: message`.
    """

    def __init__(self, path: str | Path | None, message: str, *, line: int | None = None,
                 field: str | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.message = message
        super().__init__(self.format())

    def format(self) -> str:
        """Return the one-line message: file, line, field, then what is wrong.

        Without a file (a command-line option, a folder), the field and message alone.
        """
        parts = []
        if self.path is not None:
            parts.append(self.path + (f":{self.line}" if self.line is not None else ""))
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return " ".join(": ".join(parts).splitlines())


class InputErrors(InputError):
    """Several problems found in the input at once (e.g. by `greatgame check`).

    Behaves as its first error (`str(err)`, `path`, `line`, ...); `errors` holds them all,
    each an `InputError` whose `str` is one line.
    """

    def __init__(self, errors: Iterable[InputError]):
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.path, first.message, line=first.line, field=first.field)
