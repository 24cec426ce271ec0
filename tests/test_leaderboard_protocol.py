"""The normalised column is the Open ASR Leaderboard's Portuguese scoring: the project's code against a
re-implementation written here from a reading of huggingface/open_asr_leaderboard's `normalizer/normalizer.py`
(`remove_symbols`, `BasicMultilingualTextNormalizer`), `normalizer/data_utils.py` (the number step of `ml_normalizer`)
and `normalizer/eval_utils.py` (`normalize_compound_pairs`, `score_results`), on a corpus made here."""

from __future__ import annotations

import random
import re
import unicodedata
from difflib import SequenceMatcher

import kaldialign
import num2words
import pytest

from asr_pt.metrics import score
from asr_pt.text import normalize
from eval.scores import score_rows


def leaderboard_normalize(s: str) -> str:
    s = s.lower()
    s = re.sub(r"[<\[][^>\]]*[>\]]", "", s)
    s = re.sub(r"\(([^)]+?)\)", "", s)
    s = "".join(" " if unicodedata.category(c)[0] in "MSP" else c for c in unicodedata.normalize("NFKC", s)).lower()
    s = re.sub(r"[^\w\s]", "", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"(\d)\s+(\d{3})\b", r"\1\2", s)

    def spell(m):
        try:
            return num2words.num2words(int(m.group()), lang="pt")
        except Exception:
            return m.group()

    return re.sub(r"\d+", spell, s)


def leaderboard_compound_pairs(refs, preds):
    out_refs, out_preds = [], []
    for ref, pred in zip(refs, preds, strict=True):
        rw, pw = ref.split(), pred.split()
        new_r, new_p = [], []
        for tag, i1, i2, j1, j2 in SequenceMatcher(None, rw, pw).get_opcodes():
            rc, pc = "".join(rw[i1:i2]), "".join(pw[j1:j2])
            if tag != "equal" and rc == pc:
                new_r.append(rc)
                new_p.append(pc)
            else:
                new_r.extend(rw[i1:i2])
                new_p.extend(pw[j1:j2])
        out_refs.append(" ".join(new_r))
        out_preds.append(" ".join(new_p))
    return out_refs, out_preds


def leaderboard_wer(references: list[str], predictions: list[str]) -> float:
    refs, preds = leaderboard_compound_pairs(
        [leaderboard_normalize(t) for t in references], [leaderboard_normalize(t) for t in predictions]
    )
    r = kaldialign.batch_error_rate(
        [tuple(x.split()) for x in refs], [tuple(x.split()) for x in preds], merge_compounds=True
    )
    return round(100 * r["err_rate"], 2)


PIECES = [
    "ação", "avô", "café", "pão", "coração", "guarda", "chuva", "guarda-chuva", "guardachuva", "bem-vindo", "bemvindo",
    "São", "Paulo", "1 500", "25", "3,5", "2024", "12 345 678", "10%", "5€", "(risos)", "[música]", "<ruído>", "«olá»",
    "—", "…", "!", "?", "'", '"', "O", "GATO", "dorme.", "ﬁm", "ＡＢＣ", "²", "Q\u0301", "e\u0308", "na\u0303o",
    "a\u200db", "👍🏽", "❤\ufe0f", "1\ufe0f\u20e3", "#\ufe0f\u20e3", "👨\u200d👩\u200d👧", "🇧🇷", "x\u20dd", "Ǆ", "ǅ",
    "İstanbul", "ß", "ﬀ", "٣", "\u00a0", "\t", "olá\u2028mundo", "e\u0301", "o\u0302", "a\u0300",
]  # fmt: skip


def made_up_corpus(seed: int, size: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choice(PIECES) for _ in range(rng.randint(1, 8)))

    references = [sentence() for _ in range(size)]
    hypotheses = []
    for reference in references:  # a hypothesis near its reference: some pieces kept, some changed, some added
        words = [w if rng.random() < 0.6 else rng.choice(PIECES) for w in reference.split(" ")]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words) + 1), rng.choice(PIECES))
        hypotheses.append(" ".join(words))
    return references, hypotheses


def test_normalize_equals_the_leaderboard_on_every_piece_and_sentence():
    references, hypotheses = made_up_corpus(seed=1, size=300)
    for text in PIECES + references + hypotheses:
        assert normalize(text) == leaderboard_normalize(text), repr(text)


@pytest.mark.parametrize("seed", range(4))
def test_normalised_wer_equals_the_leaderboard_score_results(seed):
    references, hypotheses = made_up_corpus(seed=seed, size=120)
    kept = [leaderboard_normalize(r) != "" for r in references]  # the leaderboard drops empty references
    references = [r for r, keep in zip(references, kept, strict=True) if keep]
    hypotheses = [h for h, keep in zip(hypotheses, kept, strict=True) if keep]
    assert round(score(references, hypotheses, "normalized").wer, 2) == leaderboard_wer(references, hypotheses)
    rows = [
        {"reference": r, "hypothesis": h, "audio_seconds": 1.0, "seconds": 0.1}
        for r, h in zip(references, hypotheses, strict=True)
    ]
    assert score_rows(rows, resamples=10)["wer_normalized"] == leaderboard_wer(references, hypotheses)


def test_merge_compounds_counts_compounds_the_first_alignment_leaves_split():
    # "bem vindo a" / "bemvindo à" differ as a region, so the compound alignment joins nothing; kaldialign's
    # merge_compounds still matches "bem vindo" to "bemvindo" at no cost, leaving one substitution (a → à)
    references, hypotheses = ["bem vindo a casa"], ["bemvindo à casa"]
    assert score(references, hypotheses, "normalized").wer == 25.0
    assert leaderboard_wer(references, hypotheses) == 25.0
