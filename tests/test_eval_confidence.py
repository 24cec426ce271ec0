"""How well confidence predicts errors: which words are wrong, the ROC AUC and the reliability bins."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from eval.confidence import confidence_scores, roc_auc, word_outcomes


def row(reference: str, words: list[tuple[str, float]]) -> dict:
    return {"reference": reference, "hypothesis": " ".join(w for w, _ in words), "words": [list(w) for w in words]}


def test_substituted_and_inserted_words_are_wrong_in_the_card_protocol():
    # reference "O gato dorme no sofá." in written form; "dorme" lacks nothing, "cão" replaces "gato", "muito" is new
    confidences, wrong = word_outcomes(
        row(
            "o gato dorme no sofá",
            [("O", 0.9), ("cão", 0.2), ("dorme", 0.8), ("muito", 0.1), ("no", 0.7), ("sofá.", 0.6)],
        )
    )
    assert confidences == [0.9, 0.2, 0.8, 0.1, 0.7, 0.6]
    assert wrong == [False, True, False, True, False, False]
    assert word_outcomes(row("bom dia", [])) == ([], [])


def test_roc_auc_is_the_share_of_right_wrong_pairs_ordered_by_confidence():
    rng = np.random.default_rng(0)
    confidences = rng.choice([0.1, 0.3, 0.5, 0.7, 0.9], size=40)  # ties on purpose
    wrong = rng.random(40) < 0.4
    pairs = [
        1.0 if right > bad else 0.5 if right == bad else 0.0
        for right, bad in itertools.product(confidences[~wrong], confidences[wrong])
    ]
    assert roc_auc(confidences, wrong) == pytest.approx(np.mean(pairs))
    assert roc_auc(confidences, np.zeros(40, dtype=bool)) is None


def test_scores_split_at_the_threshold_and_bin_for_reliability():
    rows = [
        row("um dois três", [("Um", 0.95), ("dois", 0.9), ("treze", 0.3)]),
        row("Quatro cinco", [("quatro", 0.4), ("cinco.", 0.85)]),
    ]  # against "Um dois três." and "Quatro cinco.": "treze" is wrong, and so is "quatro" (case counts)
    scores = confidence_scores("d", "m", rows)
    assert (scores.words, scores.doubtful, scores.threshold) == (5, 2, 0.5)
    assert (scores.wrong_confident, scores.wrong_doubtful, scores.roc_auc) == (0.0, 100.0, 1.0)
    assert [(b["low"], b["words"], b["right"]) for b in scores.bins] == [
        (0.3, 1, 0.0),
        (0.4, 1, 0.0),
        (0.8, 1, 1.0),
        (0.9, 2, 1.0),
    ]
    assert scores.bins[-1]["confidence"] == pytest.approx(0.925)
    assert confidence_scores("d", "m", [{"reference": "a", "hypothesis": "a"}]).words == 0  # rows without words
