"""Corpus-level scores in the model card's protocol and the paired bootstrap that says whether a difference is real.

Rates are computed from per-utterance error counts in jiwer's order, so every figure equals jiwer's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jiwer
import numpy as np

from asr_pt.metrics import prepare, score

RESAMPLES = 10_000
SEED = 0


class EvaluationError(ValueError):
    """An evaluation that cannot go on as asked, with what to change."""


def error_counts(rows: Sequence[dict]) -> np.ndarray:
    """(word errors, reference words, character errors, reference characters) of each row under the card's protocol,
    shape (n, 4): a corpus rate is the sum of an errors column over the sum of the next one, as jiwer computes it."""
    counts = np.zeros((len(rows), 4), dtype=np.int64)
    for index, row in enumerate(rows):
        reference, hypothesis = prepare(row["reference"], row["hypothesis"], "written")
        words, characters = jiwer.process_words(reference, hypothesis), jiwer.process_characters(reference, hypothesis)
        counts[index] = [
            words.substitutions + words.deletions + words.insertions,
            words.substitutions + words.deletions + words.hits,
            characters.substitutions + characters.deletions + characters.insertions,
            characters.substitutions + characters.deletions + characters.hits,
        ]
    return counts


def _rate(errors: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Errors per hundred reference words (or characters), computed in jiwer's order so the figures equal its own."""
    return 100.0 * (errors / total)


def bootstrap_wers(errors: np.ndarray, words: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """Corpus WERs (%) of each model, one per row of `errors` (models x utterances), on `resamples` resamplings of
    the utterances with replacement: shape (resamples, models). Every model sees the same resamplings, so the
    differences between columns are paired."""
    errors, words = np.atleast_2d(errors), np.asarray(words)
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // (words.size * errors.shape[0]))  # bounds memory on large test sets
    wers = np.empty((resamples, errors.shape[0]))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        index = rng.integers(0, words.size, size=(size, words.size))
        wers[start : start + size] = 100.0 * errors[:, index].sum(axis=2).T / words[index].sum(axis=1)[:, None]
    return wers


def interval(samples: np.ndarray) -> tuple[float, float]:
    """The 95% percentile interval, rounded like the scores."""
    low, high = np.percentile(samples, [2.5, 97.5])
    return round(float(low), 2) + 0.0, round(float(high), 2) + 0.0  # + 0.0 turns -0.0 into 0.0


@dataclass(frozen=True)
class Comparison:
    """Two models on the same utterances of one dataset, as the model card's table compares them."""

    dataset: str
    baseline: str
    candidate: str
    samples: int
    baseline_wer: float
    candidate_wer: float
    baseline_cer: float
    candidate_cer: float
    delta: float  # candidate WER - baseline WER, in points: negative is better
    relative: float  # delta as a percentage of the baseline WER
    ci95: tuple[float, float]  # paired bootstrap interval of `delta`

    @property
    def significant(self) -> bool:
        """The interval leaves out zero: the difference is unlikely to be resampling noise."""
        return not self.ci95[0] <= 0 <= self.ci95[1]


def compare(
    baseline: Sequence[dict],
    candidate: Sequence[dict],
    resamples: int = RESAMPLES,
    seed: int = SEED,
    *,
    counts: tuple[np.ndarray, np.ndarray] | None = None,
) -> Comparison:
    """The card's comparison of two models' prediction rows on the utterances both have; `counts` are the two sets of
    rows' `error_counts` when the caller has them already."""
    by_id = {row["id"]: index for index, row in enumerate(candidate)}
    pairs = np.array([(index, by_id[row["id"]]) for index, row in enumerate(baseline) if row["id"] in by_id])
    if not pairs.size:
        raise EvaluationError("the two models have no utterance in common to compare")
    baseline_counts, candidate_counts = counts or (error_counts(baseline), error_counts(candidate))
    paired = np.stack([baseline_counts[pairs[:, 0]], candidate_counts[pairs[:, 1]]])  # (2 models, n, 4)
    errors, words = paired[:, :, 0], paired[0, :, 1]
    wer = _rate(errors.sum(axis=1), words.sum())
    cer = _rate(paired[:, :, 2].sum(axis=1), paired[0, :, 3].sum())
    resampled = bootstrap_wers(errors, words, resamples, seed)
    first_baseline, first_candidate = baseline[pairs[0, 0]], candidate[pairs[0, 1]]
    return Comparison(
        dataset=first_baseline["dataset"],
        baseline=first_baseline["model"],
        candidate=first_candidate["model"],
        samples=len(pairs),
        baseline_wer=round(float(wer[0]), 2),
        candidate_wer=round(float(wer[1]), 2),
        baseline_cer=round(float(cer[0]), 2),
        candidate_cer=round(float(cer[1]), 2),
        delta=round(float(wer[1] - wer[0]), 2),
        relative=round(100.0 * float(wer[1] - wer[0]) / float(wer[0]), 1) if wer[0] else float("nan"),
        ci95=interval(resampled[:, 1] - resampled[:, 0]),
    )


def score_rows(
    rows: Sequence[dict], resamples: int = RESAMPLES, seed: int = SEED, *, counts: np.ndarray | None = None
) -> dict:
    """One model's scores on one dataset from its prediction rows, as `results.json` holds them; `counts` are the
    rows' `error_counts` when the caller has them already."""
    counts = error_counts(rows) if counts is None else counts
    totals = counts.sum(axis=0)
    normalized = score([r["reference"] for r in rows], [r["hypothesis"] for r in rows], "normalized")
    audio_seconds = sum(r["audio_seconds"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    return {
        "wer": round(float(_rate(totals[0], totals[1])), 2),
        "cer": round(float(_rate(totals[2], totals[3])), 2),
        "wer_normalized": round(normalized.wer, 2),
        "cer_normalized": round(normalized.cer, 2),
        "n": len(rows),
        "audio_seconds": round(audio_seconds, 2),
        "rtfx": round(audio_seconds / seconds, 2) if seconds else None,
        "wer_ci95": list(interval(bootstrap_wers(counts[:, 0], counts[:, 1], resamples, seed)[:, 0])),
        "truncated": sum(bool(r.get("truncated")) for r in rows),
    }
