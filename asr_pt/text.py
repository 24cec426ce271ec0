"""Text forms of a transcript: the model card's written form and the leaderboard's normalised form."""

import re
import unicodedata

TERMINAL_PUNCTUATION = ".!?…"
CLOSING_BRACKETS_AND_QUOTES = ")]}\"'»”’›"

_TRAILING_DOTS = re.compile(r"[.…]+$")
_BRACKETED_SPANS = re.compile(r"[<\[][^>\]]*[>\]]|\([^)]+?\)")


def written_form(text: str | None) -> str:
    """The model card's reference normalisation, applied to every reference in training and evaluation.

    The model learnt to write sentences that start with a capital and end with punctuation, so references are put
    in that form before they are trained on or compared with its output. The card states the rule as "capitalise
    the first letter"; its author's code looks only at the first character, so it leaves `"oi"` alone where the
    rule (followed here) gives `"Oi"`. A text whose first letter or digit is a digit is not capitalised. A text of
    dots alone becomes ".".
    """
    text = _TRAILING_DOTS.sub(".", (text or "").strip())
    first = next((i for i, char in enumerate(text) if char.isalnum()), None)
    if first is not None and text[first].islower():
        text = text[:first] + text[first].upper() + text[first + 1 :]
    if text and text[-1] not in TERMINAL_PUNCTUATION + CLOSING_BRACKETS_AND_QUOTES:
        text += "."
    return text


def normalize(text: str | None) -> str:
    """The text behind "normalised WER", as the Open ASR Leaderboard's multilingual normaliser makes it.

    Matches `BasicMultilingualTextNormalizer(remove_diacritics=False)`: case, punctuation, symbols and bracketed
    asides (`[música]`, `(risos)`) do not count, while accents and other combining marks do, since in Portuguese
    they tell words apart (`é`/`e`, `avó`/`avô`). NFKC composes decomposed input, so NFD and NFC text compare equal.
    """
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = _BRACKETED_SPANS.sub("", text)
    text = "".join(" " if unicodedata.category(char)[0] in "PS" else char for char in text)
    return " ".join(text.split())
