"""The live scoreboard: how the fine-tuned and the base model do against what reviewers say was really said."""

from __future__ import annotations

import collections
from dataclasses import dataclass

from asr_pt.metrics import PROTOCOLS, Scores, score
from asr_pt.review.items import VERDICTS
from asr_pt.review.store import ReviewStore


@dataclass(frozen=True)
class Scoreboard:
    items: int  # corrected items scored
    scores: dict[str, dict[str, Scores]]  # protocol -> {"finetuned": ..., "base": ...}; empty without items
    verdicts: dict[str, int]
    double_reviewed: int
    mean_agreement_wer: float | None  # mean WER between reviewers on items with two or more reviews

    def rows(self) -> list[list]:
        """One row per protocol and model, for a table: protocol, model, WER %, CER %."""
        return [
            [protocol, model, round(s.wer, 2), round(s.cer, 2)]
            for protocol, by_model in self.scores.items()
            for model, s in by_model.items()
        ]


def scoreboard(store: ReviewStore) -> Scoreboard:
    """Corpus-level WER/CER of both hypotheses against the corrections, in both protocols, with verdicts."""
    items = store.corrected()
    references = [item.text or "" for item in items]
    scores = {}
    if items:
        for protocol in PROTOCOLS:
            scores[protocol] = {
                "finetuned": score(references, [item.hypothesis_finetuned for item in items], protocol),
                "base": score(references, [item.hypothesis_base for item in items], protocol),
            }
    verdicts = collections.Counter(item.verdict for item in items if item.verdict)
    agreements = [item.agreement_wer for item in items if item.agreement_wer is not None]
    return Scoreboard(
        items=len(items),
        scores=scores,
        verdicts={verdict: verdicts[verdict] for verdict in VERDICTS},
        double_reviewed=len(agreements),
        mean_agreement_wer=sum(agreements) / len(agreements) if agreements else None,
    )
