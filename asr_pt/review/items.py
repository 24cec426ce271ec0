"""What the review store holds and hands out: items, their revisions, items to queue, and the refusals a reviewer
is told about."""

from __future__ import annotations

from dataclasses import dataclass

from asr_pt.corpora import is_test_split

STATUSES = ("pending", "in_review", "corrected", "skipped", "flagged")
VERDICTS = ("finetuned_better", "base_better", "equal", "both_wrong")


class StoreError(ValueError):
    """A request the store cannot honour (unknown item, bad verdict...), with a message for the reviewer."""


class LeaseHeld(StoreError):
    """Another reviewer holds the item now: a save that did not come from its screen (a replay, a stale page)."""

    def __init__(self, item_id: int, holder: str):
        self.item_id, self.holder = item_id, holder
        super().__init__(f"Not saved: item {item_id} is being reviewed by {holder} now. Your text is in its history.")


class SaveConflict(StoreError):
    """Someone changed the item after this reviewer opened it; their text is kept in the history all the same."""

    def __init__(self, item_id: int, base_version: int, current: Item, last: Revision | None):
        self.item_id, self.base_version, self.current, self.last = item_id, base_version, current, last
        who = f"{last.reviewer} ({last.action})" if last else "someone"
        super().__init__(
            f"Not saved over another reviewer's work: {who} changed item {item_id} after you opened it "
            f"(version {base_version} -> {current.version}). Their text: {current.text or ''!r}. "
            "Your text is kept in the item's history; reload the item to merge."
        )


@dataclass(frozen=True)
class Item:
    id: int
    audio_hash: str
    duration: float
    source: str
    source_id: str
    source_split: str
    reference: str
    hypothesis_finetuned: str
    hypothesis_base: str
    model_finetuned: str
    model_base: str
    disagreement: float
    status: str
    queue: str
    text: str | None
    verdict: str | None
    reviewer: str | None
    corrected_at: float | None
    seconds: float | None
    flag_reason: str | None
    reviews: int
    agreement_wer: float | None
    version: int
    lease_owner: str | None
    lease_expires: float | None
    claimed_at: float | None
    created_at: float

    @property
    def is_test(self) -> bool:
        """Clips from a test split must never be trained on."""
        return is_test_split(self.source_split)


@dataclass(frozen=True)
class Revision:
    id: int
    item_id: int
    action: str
    reviewer: str
    base_version: int
    applied: int
    text: str | None
    verdict: str | None
    reason: str | None
    seconds: float | None
    created_at: float


@dataclass(frozen=True)
class NewItem:
    """An item to queue; its audio is already in the store (`ReviewStore.put_audio`)."""

    audio_hash: str
    duration: float
    source: str
    source_id: str
    hypothesis_finetuned: str
    hypothesis_base: str
    model_finetuned: str
    model_base: str
    source_split: str = ""
    reference: str = ""
