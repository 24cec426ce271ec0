"""Where a model wins and loses: scores per value of a dataset column (gender, age, accent, duration...), each with
its bootstrap interval and, against the baseline, the paired Δ and its interval.

A slice is the utterances of one dataset that share a value; its scores are computed like the dataset's own (corpus
WER over the slice, the same resampling for every model), so a slice row reads like a row of the card's table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from asr_pt.explore import SLICE_FIELDS, duration_bin
from eval.scores import RESAMPLES, SEED, EvaluationError, bootstrap_wers, interval

DURATION = "duration"
# Common Voice's columns that matter most for this model (Brazilian vs European Portuguese above all), then length.
DEFAULT_SLICES = (*SLICE_FIELDS, DURATION)
MISSING = "(none)"
MAX_VALUES = 20  # a column with more values than this is mostly noise per slice: the rest are pooled as "(other)"


def slice_value(row: dict, column: str) -> str:
    """A prediction row's value in a slice column: its duration bin for "duration", else the clip's field."""
    if column == DURATION:
        return duration_bin(row["audio_seconds"])
    return (row.get("fields") or {}).get(column) or MISSING


@dataclass(frozen=True)
class SliceScore:
    """One value of one column of one dataset: every model's WER there and each candidate's Δ to the baseline."""

    dataset: str
    column: str
    value: str
    samples: int
    wer: dict[str, float]  # model -> corpus WER (%) over the slice
    wer_ci95: dict[str, tuple[float, float]]
    delta: dict[str, float]  # candidate -> candidate WER - baseline WER, in points
    delta_ci95: dict[str, tuple[float, float]]

    @property
    def significant(self) -> dict[str, bool]:
        return {model: not low <= 0 <= high for model, (low, high) in self.delta_ci95.items()}


def slice_columns(rows: Sequence[dict], asked: Sequence[str] | None) -> list[str]:
    """The columns to slice by: those asked for (each must exist), or the defaults the rows have."""
    present = {DURATION} | {column for row in rows for column in row.get("fields") or {}}
    if asked:
        unknown = [column for column in asked if column not in present]
        if unknown:
            raise EvaluationError(
                f"--slice-by {unknown[0]}: no utterance has that column; the data has {', '.join(sorted(present))}"
            )
        return list(dict.fromkeys(asked))
    return [column for column in DEFAULT_SLICES if column in present]


def _values(rows: Sequence[dict], column: str) -> list[str]:
    """Each row's value, the rarest values pooled as "(other)" past MAX_VALUES."""
    values = [slice_value(row, column) for row in rows]
    kept = {value for value, _ in Counter(values).most_common(MAX_VALUES)}
    return [value if value in kept else "(other)" for value in values]


def slice_scores(
    dataset: str,
    rows: dict[str, Sequence[dict]],
    counts: dict[str, np.ndarray],
    columns: Sequence[str],
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> list[SliceScore]:
    """Scores per slice of one dataset. `rows` maps each model (the baseline first) to its prediction rows and
    `counts` to their `error_counts`; only utterances every model has are used, so the Δ is paired."""
    models = list(rows)
    shared = set.intersection(*({row["id"] for row in model_rows} for model_rows in rows.values()))
    order = [row["id"] for row in rows[models[0]] if row["id"] in shared]
    index = {model: {row["id"]: i for i, row in enumerate(rows[model])} for model in models}
    errors = np.stack([counts[m][[index[m][i] for i in order], 0] for m in models])  # (models, n)
    words = counts[models[0]][[index[models[0]][i] for i in order], 1]
    aligned = [rows[models[0]][index[models[0]][i]] for i in order]
    scores = []
    for column in columns:
        values = np.array(_values(aligned, column))
        for value, samples in Counter(values.tolist()).most_common():
            mask = values == value
            if not words[mask].sum():
                continue  # a slice of empty references has no WER
            wers = 100.0 * errors[:, mask].sum(axis=1) / words[mask].sum()
            resampled = bootstrap_wers(errors[:, mask], words[mask], resamples, seed)
            scores.append(
                SliceScore(
                    dataset=dataset,
                    column=column,
                    value=value,
                    samples=samples,
                    wer={m: round(float(w), 2) for m, w in zip(models, wers, strict=True)},
                    wer_ci95={m: interval(resampled[:, i]) for i, m in enumerate(models)},
                    delta={m: round(float(wers[i] - wers[0]), 2) for i, m in enumerate(models) if i},
                    delta_ci95={m: interval(resampled[:, i] - resampled[:, 0]) for i, m in enumerate(models) if i},
                )
            )
    return scores
