"""How word diffs look on the page, the same in the Transcribe and the Review tab."""

from __future__ import annotations

DIFF_COLORS = {"substitution": "#f59e0b", "insertion": "#10b981", "deletion": "#ef4444"}


def spaced(words: list) -> list[tuple[str, str | None]]:
    """HighlightedText runs unmarked words together, so each word carries its trailing space."""
    return [(word + " ", tag) for word, tag in words]
