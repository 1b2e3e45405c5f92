"""The one error type for bad input: a file, an option, a value the user gave.

The command line prints its one line and exits with code 2. Every layer may raise it.
"""

from __future__ import annotations

from pathlib import Path


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
        """Return the one-line message: file, line, field, then what is wrong."""
        where = self.path or "<input>"
        if self.line is not None:
            where += f":{self.line}"
        parts = [where]
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return " ".join(": ".join(parts).splitlines())
