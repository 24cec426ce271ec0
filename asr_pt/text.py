"""Text forms of a transcript: the model card's written form and the Open ASR Leaderboard's normalised form.

Each follows the code that made its numbers, not the prose around it: `written_form` the seed author's
`normalize_written_form` (yuriyvnv/TTS-Augmented-ASR, src/evaluation/score_written_form.py), `normalize` and
`align_compounds` the leaderboard's Portuguese scoring (huggingface/open_asr_leaderboard, normalizer/).
"""

import re
import unicodedata
from difflib import SequenceMatcher

from num2words import num2words

TERMINAL_PUNCTUATION = ".!?…"
CLOSING_BRACKETS_AND_QUOTES = ")]}\"'»”’›"
NUMBER_LANGUAGE = "pt"

_TRAILING_DOTS = re.compile(r"[.…]+$")
_ANGLE_OR_SQUARE_SPANS = re.compile(r"[<\[][^>\]]*[>\]]")
_PARENTHESISED_SPANS = re.compile(r"\(([^)]+?)\)")
_NOT_WORD_OR_SPACE = re.compile(r"[^\w\s]")  # the standard library's \w, as upstream: joiners go
_SPACED_THOUSANDS = re.compile(r"(\d)\s+(\d{3})\b")
_DIGITS = re.compile(r"\d+")


def written_form(text: str | None) -> str:
    """The model card's reference normalisation, applied to every reference and training target.

    It is the seed author's rule as their code applies it (the card's numbers come from that code): strip, turn a
    trailing run of dots or ellipses into one ".", upper-case the very first character if it is a lower-case letter,
    and end with "." unless the text already ends with terminal punctuation or a closing bracket or quote. Only the
    first character is looked at, so `"(risos) bom dia"` keeps its lower-case "b" and `"¿qué?"` stays as it is. No
    Unicode normalisation: decomposed and composed accents are different characters, as in the author's scores.
    """
    text = _TRAILING_DOTS.sub(".", (text or "").strip())
    if not text:
        return text
    if text[0].islower():
        text = text[0].upper() + text[1:]
    if text[-1] not in TERMINAL_PUNCTUATION + CLOSING_BRACKETS_AND_QUOTES:
        text += "."
    return text


def _spell_number(match: re.Match) -> str:
    try:
        return num2words(int(match.group()), lang=NUMBER_LANGUAGE)
    except (OverflowError, NotImplementedError, ValueError):  # too large to spell: left as digits, as upstream
        return match.group()


def normalize(text: str | None) -> str:
    """The text behind "normalised WER": the leaderboard's Portuguese normaliser, as its code runs.

    `BasicMultilingualTextNormalizer(remove_diacritics=False)`: lower-case, drop `<...>`, `[...]` and `(...)` spans,
    NFKC, then every mark, symbol and punctuation character (Unicode categories M*, S*, P*) to a space, and what is
    neither a word character nor a space (zero-width joiners) removed. Accents survive where NFKC composes them into
    one letter; a mark with no precomposed letter (`"q\u0301"`), an emoji's variation selector or a keycap's
    enclosing mark becomes a space, whatever upstream's docstring says about keeping diacritics. Then digits are
    spelt out in Portuguese with num2words after joining thousands written with a space (`"1 500"` → `"mil e
    quinhentos"`).
    """
    text = (text or "").lower()
    text = _PARENTHESISED_SPANS.sub("", _ANGLE_OR_SQUARE_SPANS.sub("", text))
    text = "".join(" " if unicodedata.category(c)[0] in "MSP" else c for c in unicodedata.normalize("NFKC", text))
    text = _NOT_WORD_OR_SPACE.sub("", text.lower())
    text = re.sub(r"\s+", " ", text).strip()
    return _DIGITS.sub(_spell_number, _SPACED_THOUSANDS.sub(r"\1\2", text))


def align_compounds(reference: str, hypothesis: str) -> tuple[str, str]:
    """Compound words split on one side and joined on the other (`"guarda chuva"` / `"guardachuva"`) written the
    same on both, joined, as the leaderboard does before scoring non-English sets: only where the differing words
    are the same letters once spaces are taken out."""
    reference_words, hypothesis_words = reference.split(), hypothesis.split()
    aligned_reference: list[str] = []
    aligned_hypothesis: list[str] = []
    matcher = SequenceMatcher(None, reference_words, hypothesis_words)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        left, right = reference_words[i1:i2], hypothesis_words[j1:j2]
        if tag != "equal" and "".join(left) == "".join(right):
            left = right = ["".join(left)]
        aligned_reference += left
        aligned_hypothesis += right
    return " ".join(aligned_reference), " ".join(aligned_hypothesis)
