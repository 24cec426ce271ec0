"""Word and character error rates under the two protocols we report, and word alignments for diff views."""

from dataclasses import dataclass

import jiwer
import kaldialign

from .text import align_compounds, normalize, written_form

PROTOCOLS = ("written", "normalized")


@dataclass(frozen=True)
class Scores:
    """Error rates in percent; above 100 when the hypothesis inserts more words than the reference has."""

    wer: float
    cer: float


def prepare(reference: str | None, hypothesis: str | None, protocol: str = "written") -> tuple[str, str]:
    """The reference and hypothesis as the protocol compares them.

    "written" is the model card's protocol as its author's code scores it: the reference in written form, the
    hypothesis as the model wrote it (stripped), both compared character for character, so case, punctuation and
    Unicode form all count. "normalized" is the leaderboard's: both normalised, then compound words split on one side
    and joined on the other aligned, so only words count.
    """
    if protocol == "written":
        return written_form(reference), (hypothesis or "").strip()
    if protocol == "normalized":
        return align_compounds(normalize(reference), normalize(hypothesis))
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")


def score(references: list[str], hypotheses: list[str], protocol: str = "written") -> Scores:
    """Corpus-level scores: all errors over all reference words (or characters), not a mean of per-utterance rates.

    The normalised WER is the leaderboard's `score_results`: kaldialign's `batch_error_rate` with
    `merge_compounds=True` on the compound-aligned texts, so a compound split on one side still costs nothing where
    the first alignment left it. The leaderboard reports no CER; the normalised CER is jiwer's on the same texts.
    A reference that is empty after preparation adds no words to the denominator, but whatever the hypothesis says
    for it still counts as insertions, so hallucinations on silent clips are not hidden; where no reference has any
    word, each inserted word counts 100, as jiwer divides by at least one (the leaderboard drops empty references).
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("nothing to score: no references")
    pairs = [prepare(*pair, protocol) for pair in zip(references, hypotheses, strict=True)]
    prepared_references = [reference for reference, _ in pairs]
    prepared_hypotheses = [hypothesis for _, hypothesis in pairs]
    cer = 100.0 * jiwer.cer(prepared_references, prepared_hypotheses)
    if protocol == "written":
        return Scores(wer=100.0 * jiwer.wer(prepared_references, prepared_hypotheses), cer=cer)
    counts = kaldialign.batch_error_rate(
        [tuple(reference.split()) for reference in prepared_references],
        [tuple(hypothesis.split()) for hypothesis in prepared_hypotheses],
        merge_compounds=True,
    )
    return Scores(wer=100.0 * (counts["err_rate"] if counts["ref_len"] else counts["total"]), cer=cer)


def score_pair(reference: str, hypothesis: str, protocol: str = "written") -> Scores:
    """Scores of one utterance. An empty reference scores 0 against an empty hypothesis, else 100 per inserted word
    (and per inserted character for CER), since jiwer divides by at least one."""
    return score([reference], [hypothesis], protocol)


def align_words(reference: str, hypothesis: str) -> list[tuple[str, str | None]]:
    """The word-by-word difference between two texts as `(text, tag)` pairs for `gradio.HighlightedText`.

    Tags are None for matching words, "substitution" (shown as "reference→hypothesis" so the reader sees both),
    "insertion" for words only in the hypothesis and "deletion" for words only in the reference. Words are split on
    whitespace and compared as they are; normalise first if case and punctuation should not count.
    """
    alignment = jiwer.process_words(reference, hypothesis)
    reference_words, hypothesis_words = alignment.references[0], alignment.hypotheses[0]
    pairs: list[tuple[str, str | None]] = []
    for chunk in alignment.alignments[0]:
        removed = reference_words[chunk.ref_start_idx : chunk.ref_end_idx]
        added = hypothesis_words[chunk.hyp_start_idx : chunk.hyp_end_idx]
        if chunk.type == "equal":
            pairs += [(word, None) for word in added]
        elif chunk.type == "substitute":
            pairs += [(f"{old}→{new}", "substitution") for old, new in zip(removed, added, strict=True)]
        elif chunk.type == "insert":
            pairs += [(word, "insertion") for word in added]
        else:
            pairs += [(word, "deletion") for word in removed]
    return pairs
