"""The result of a run: one row per check, printed as a table."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

HEADER = ("check", "expected", "got", "ok")
# A cell wider than this is cut: a row must stay readable in a terminal.
MAX_CELL = 60


@dataclass(frozen=True)
class Row:
    check: str
    expected: str
    got: str

    @property
    def ok(self) -> bool:
        return self.expected == self.got


def _cell(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_CELL else flat[: MAX_CELL - 1] + "…"


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal: wide (CJK, fullwidth) characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in {"W", "F"} else 1 for char in text)


def pad(text: str, columns: int) -> str:
    return text + " " * (columns - width(text))


def render(rows: list[Row]) -> str:
    """A plain-text table with a summary line; failed rows are marked FAIL."""
    cells = [HEADER] + [
        (_cell(row.check), _cell(row.expected), _cell(row.got), "ok" if row.ok else "FAIL")
        for row in rows
    ]
    widths = [max(width(line[column]) for line in cells) for column in range(len(HEADER))]
    lines = [
        "  ".join(pad(cell, columns) for cell, columns in zip(line, widths, strict=True)).rstrip()
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * columns for columns in widths))
    failed = sum(not row.ok for row in rows)
    lines.append(f"{len(rows) - failed} of {len(rows)} checks passed, {failed} failed")
    return "\n".join(lines)


def exit_code(rows: list[Row]) -> int:
    """0 only when there were checks and every one passed."""
    return 0 if rows and all(row.ok for row in rows) else 1
