"""Lines that ``jitsi-auth-sidecar setup`` owns inside files it does not.

Each addition sits between a BEGIN and an END comment line, so that a later
run finds and replaces exactly its own lines (a second run with the same
answers changes nothing) and an admin sees at a glance what the sidecar
added. Removing every block gives back the file as it was before, apart
from what the admin changed outside the blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

MARK = "jitsi-auth-sidecar setup"


class UnclosedBlock(ValueError):
    """A BEGIN line without its END: the file was edited by hand, half-way."""


def begin_line(comment: str) -> str:
    return f"{comment} BEGIN {MARK}: changed by setup, removed by setup --undo"


def end_line(comment: str) -> str:
    return f"{comment} END {MARK}"


def block(lines: Sequence[str], *, comment: str, indent: str = "") -> list[str]:
    """``lines`` between the markers, each indented and ending in a newline."""
    body = [begin_line(comment), *lines, end_line(comment)]
    return [f"{indent}{line}\n" if line else "\n" for line in body]


def without_blocks(text: str, *, comment: str) -> str:
    """``text`` with every marked block (markers included) taken out."""
    kept: list[str] = []
    inside = False
    begin, end = begin_line(comment), end_line(comment)
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped == begin:
            if inside:
                raise UnclosedBlock(f"a {MARK} block begins inside another")
            inside = True
        elif stripped == end:
            if not inside:
                raise UnclosedBlock(f"a {MARK} block ends that never began")
            inside = False
        elif not inside:
            kept.append(line)
    if inside:
        raise UnclosedBlock(f"a {MARK} block is not closed (its END line is missing)")
    return "".join(kept)


def as_lines(text: str) -> list[str]:
    """``text`` as lines that each end in a newline (a last line without one gets it)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines
