"""What kind of errors each model makes, and utterance by utterance whether the candidate did better than the
baseline: the tables that tell the team where a fine-tune helps and where it hurts.

Substitutions, insertions and deletions are counted in the card's protocol (they add up to its WER); the most
frequent word substitutions are taken from the normalised texts, where case and punctuation do not hide them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import jiwer

from asr_pt.metrics import prepare

TOP_SUBSTITUTIONS = 10
EXAMPLES = 3


@dataclass(frozen=True)
class ErrorKinds:
    """One model's word errors on one dataset."""

    dataset: str
    model: str
    substitutions: int
    insertions: int
    deletions: int
    reference_words: int
    top_substitutions: list[tuple[str, str, int]]  # (reference word, hypothesis word, times), most frequent first


def error_kinds(rows: Sequence[dict], top: int = TOP_SUBSTITUTIONS) -> ErrorKinds:
    """Counts of each kind of word error over one model's prediction rows of one dataset."""
    totals = Counter()
    substituted = Counter()
    for row in rows:
        written = jiwer.process_words(*prepare(row["reference"], row["hypothesis"], "written"))
        totals.update(
            substitutions=written.substitutions,
            insertions=written.insertions,
            deletions=written.deletions,
            words=written.substitutions + written.deletions + written.hits,
        )
        reference, hypothesis = prepare(row["reference"], row["hypothesis"], "normalized")
        if not reference.strip() or not hypothesis.strip():
            continue
        normalized = jiwer.process_words(reference, hypothesis)
        words_in, words_out = normalized.references[0], normalized.hypotheses[0]
        for chunk in normalized.alignments[0]:
            if chunk.type == "substitute":
                old = words_in[chunk.ref_start_idx : chunk.ref_end_idx]
                new = words_out[chunk.hyp_start_idx : chunk.hyp_end_idx]
                substituted.update(zip(old, new, strict=True))
    return ErrorKinds(
        dataset=rows[0]["dataset"] if rows else "",
        model=rows[0]["model"] if rows else "",
        substitutions=totals["substitutions"],
        insertions=totals["insertions"],
        deletions=totals["deletions"],
        reference_words=totals["words"],
        top_substitutions=[(old, new, times) for (old, new), times in substituted.most_common(top)],
    )


@dataclass(frozen=True)
class UtteranceChanges:
    """Per utterance, whether the candidate made fewer word errors than the baseline, more, or as many."""

    dataset: str
    baseline: str
    candidate: str
    better: int
    worse: int
    same: int
    examples: dict[str, list[dict]] = field(default_factory=dict)  # "better" / "worse" / "same" -> a few utterances


def utterance_changes(
    baseline: Sequence[dict], candidate: Sequence[dict], word_errors: tuple[Sequence[int], Sequence[int]]
) -> UtteranceChanges:
    """Compares two models' rows utterance by utterance; `word_errors` are each row's card-protocol word errors
    (`error_counts(...)[:, 0]`). Examples are the largest changes first, and for "same" the most errors first."""
    by_id = {row["id"]: (row, errors) for row, errors in zip(candidate, word_errors[1], strict=True)}
    changes: dict[str, list[tuple[int, dict]]] = {"better": [], "worse": [], "same": []}
    for row, errors in zip(baseline, word_errors[0], strict=True):
        if row["id"] not in by_id:
            continue
        other, other_errors = by_id[row["id"]]
        change = int(other_errors) - int(errors)
        kind = "better" if change < 0 else "worse" if change > 0 else "same"
        example = {
            "id": row["id"],
            "reference": row["reference"],
            "baseline": row["hypothesis"],
            "candidate": other["hypothesis"],
            "baseline_errors": int(errors),
            "candidate_errors": int(other_errors),
        }
        changes[kind].append((abs(change) if kind != "same" else int(errors), example))
    first = baseline[0] if baseline else {}
    return UtteranceChanges(
        dataset=first.get("dataset", ""),
        baseline=first.get("model", ""),
        candidate=candidate[0]["model"] if candidate else "",
        better=len(changes["better"]),
        worse=len(changes["worse"]),
        same=len(changes["same"]),
        examples={
            kind: [example for _, example in sorted(found, key=lambda pair: -pair[0])[:EXAMPLES]]
            for kind, found in changes.items()
        },
    )
