"""How well the model's word confidence (`asr_pt.confidence`) predicts its errors, per dataset and model.

A hypothesis word is wrong when the card-protocol alignment against the written-form reference substitutes or
inserts it (the words are the ones the model wrote, so each has its confidence). Three figures: the share of wrong
words among the confident and among the doubtful ones, the area under the ROC curve of "word is wrong" against
confidence (0.5: confidence says nothing; 1: every wrong word is less confident than every right one), and the
reliability of the confidence as a probability (per confidence bin, the share of words that are right).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jiwer
import numpy as np

from asr_pt.confidence import DOUBT_THRESHOLD
from asr_pt.metrics import prepare

BINS = 10


@dataclass(frozen=True)
class ConfidenceScores:
    dataset: str
    model: str
    words: int  # hypothesis words that carry a confidence
    doubtful: int  # of them, below the threshold
    threshold: float
    wrong_confident: float | None  # % of confident words that are wrong (None: no such word)
    wrong_doubtful: float | None  # % of doubtful words that are wrong
    roc_auc: float | None  # None when every word is right, or every word wrong
    bins: list[dict]  # reliability: {"low", "high", "words", "confidence" (mean), "right" (share)} per non-empty bin


def word_outcomes(row: dict) -> tuple[list[float], list[bool]]:
    """Each hypothesis word's confidence and whether it is wrong, for one prediction row with `words`."""
    reference, hypothesis = prepare(row["reference"], row["hypothesis"], "written")
    confidences = [confidence for _, confidence in row["words"]]
    if not hypothesis:
        return [], []
    wrong = [True] * len(hypothesis.split())  # an empty reference: every word is an insertion
    if reference:
        for chunk in jiwer.process_words(reference, hypothesis).alignments[0]:
            for index in range(chunk.hyp_start_idx, chunk.hyp_end_idx):
                wrong[index] = chunk.type != "equal"
    if len(confidences) != len(wrong):  # a row whose words do not match its hypothesis is left out
        return [], []
    return confidences, wrong


def roc_auc(confidences: np.ndarray, wrong: np.ndarray) -> float | None:
    """P(a right word is more confident than a wrong one), ties counted half (the Mann-Whitney statistic)."""
    right_count, wrong_count = int((~wrong).sum()), int(wrong.sum())
    if not right_count or not wrong_count:
        return None
    values, inverse, counts = np.unique(confidences, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2  # ranks from 1, tied values sharing their mean rank
    ranks = average_rank[inverse]
    return float((ranks[~wrong].sum() - right_count * (right_count + 1) / 2) / (right_count * wrong_count))


def _share(mask: np.ndarray) -> float | None:
    return round(100.0 * float(mask.mean()), 2) if mask.size else None


def confidence_scores(
    dataset: str, model: str, rows: Sequence[dict], threshold: float = DOUBT_THRESHOLD
) -> ConfidenceScores:
    outcomes = [word_outcomes(row) for row in rows if row.get("words") is not None]
    confidences = np.array([c for cs, _ in outcomes for c in cs], dtype=float)
    wrong = np.array([w for _, ws in outcomes for w in ws], dtype=bool)
    doubtful = confidences < threshold
    which = np.minimum((confidences * BINS).astype(int), BINS - 1)  # bins of width 1/BINS, 1.0 in the last
    bins = [
        {
            "low": b / BINS,
            "high": (b + 1) / BINS,
            "words": int((which == b).sum()),
            "confidence": round(float(confidences[which == b].mean()), 4),
            "right": round(float((~wrong[which == b]).mean()), 4),
        }
        for b in range(BINS)
        if (which == b).any()
    ]
    auc = roc_auc(confidences, wrong)
    return ConfidenceScores(
        dataset=dataset,
        model=model,
        words=int(confidences.size),
        doubtful=int(doubtful.sum()),
        threshold=threshold,
        wrong_confident=_share(wrong[~doubtful]),
        wrong_doubtful=_share(wrong[doubtful]),
        roc_auc=None if auc is None else round(auc, 4),
        bins=bins,
    )
