"""Markdown tables for the reports, cards and summaries people read."""

from __future__ import annotations

from collections.abc import Sequence

MAX_CELL_CHARACTERS = 200  # a hallucinating model can write pages; a table shows their start


def cell(text: object) -> str:
    """Text that cannot break a table row: one line, pipes escaped, long text cut."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= MAX_CELL_CHARACTERS else text[:MAX_CELL_CHARACTERS] + "…"


def table(header: Sequence[object], rows: Sequence[Sequence[object]]) -> str:
    return "\n".join(_row(cells) for cells in [header, ["---"] * len(header), *rows])


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(cell(c) for c in cells) + " |"
