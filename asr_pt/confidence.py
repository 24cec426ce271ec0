"""Word confidence from the model's own scores: how sure Qwen3-ASR was of each word it wrote.

While `generate` runs, `ChosenTokenLogProbs` keeps the log-probability the model gave each token it chose (one
log-softmax per step, nothing stored beyond one step's scores). `word_confidences` then cuts the transcript into
words as they are written (split on whitespace, punctuation attached) and gives each word the product of its tokens'
probabilities: by the chain rule that is the probability the model gave the whole word, spelling included, given
everything before it. A word is only right if all its tokens are, so a single doubtful token makes the word
doubtful, however sure the model was of the rest; a mean would hide it behind the word's easy tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

import torch

# Below this the model gave the word less than even odds: the word is marked as doubtful.
DOUBT_THRESHOLD = 0.5
_REPLACEMENT = "\ufffd"  # what a partial UTF-8 character decodes to until its last byte arrives


@dataclass(frozen=True)
class ScoredWord:
    word: str
    confidence: float  # the model's probability of the word, 0 to 1

    @property
    def doubtful(self) -> bool:
        return self.confidence < DOUBT_THRESHOLD


class ChosenTokenLogProbs:
    """A logits processor (what `generate(logits_processor=[...])` calls with each step's input ids and scores) that
    changes nothing and keeps the log-softmax of the scores the next token is chosen from, until that token is known.
    transformers runs custom processors after the model's own (repetition penalty...) and before sampling warpers,
    so it sees the distribution greedy decoding takes the top of. `chosen(new_tokens)` gives each row's values."""

    def __init__(self):
        self._steps: list[torch.Tensor] = []  # (batch,) log-probability of each step's chosen token
        self._previous: torch.Tensor | None = None  # last step's log-softmax, until its token is known

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._previous is not None:
            self._gather(input_ids[:, -1])
        self._previous = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def _gather(self, tokens: torch.Tensor) -> None:
        self._steps.append(self._previous.gather(1, tokens[:, None].to(self._previous.device))[:, 0].cpu())
        self._previous = None

    def chosen(self, new_tokens: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of `new_tokens` (batch, steps): the tokens generated after the prompt."""
        if self._previous is not None and len(self._steps) < new_tokens.shape[1]:
            self._gather(new_tokens[:, len(self._steps)])
        if not self._steps:
            return torch.zeros(new_tokens.shape[0], 0)
        return torch.stack(self._steps, dim=1)[:, : new_tokens.shape[1]]


def word_confidences(tokenizer, token_ids: Sequence[int], log_probs: Sequence[float], after: str) -> list[ScoredWord]:
    """The words of the text decoded from `token_ids` that follow `after` (qwen-asr's `<asr_text>` tag, or "" for
    all of it), each with the product of its tokens' probabilities. A token counts towards the words of the
    characters it completes: the space before a word is the model's choice to start that word, and a token that only
    carries part of a character goes with the word that character lands in."""
    ends, text = [], ""
    for index in range(len(token_ids)):
        text = tokenizer.decode(token_ids[: index + 1], skip_special_tokens=True, clean_up_tokenization_spaces=False)
        ends.append(len(text.rstrip(_REPLACEMENT)))
    start = text.find(after) + len(after) if after and after in text else 0
    words = text[start:].split()
    owners: list[int | None] = [None] * len(text)  # the word each character belongs to
    word, inside = 0, False
    for position in range(start, len(text)):
        if text[position].isspace():
            word, inside = word + inside, False
        else:
            inside = True
        owners[position] = word if word < len(words) else None
    sums = [0.0] * len(words)
    begin = 0
    for end, log_prob in zip(ends, log_probs, strict=True):
        for owner in {owners[c] for c in range(begin, min(max(end, begin + 1), len(text)))} - {None}:
            sums[owner] += float(log_prob)
        begin = max(begin, end)
    return [ScoredWord(word, math.exp(total)) for word, total in zip(words, sums, strict=True)]


def match_words(text: str, scored: Sequence[ScoredWord]) -> tuple[ScoredWord, ...]:
    """`scored` for the words of `text`, which qwen-asr's parser may have changed (it collapses repeated runs):
    words it kept keep their confidence; a word it wrote differently gets the lowest confidence of the words it
    replaced."""
    words = text.split()
    if [w.word for w in scored] == words:
        return tuple(scored)
    matched: list[ScoredWord] = []
    opcodes = SequenceMatcher(None, [w.word for w in scored], words, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal":
            matched += scored[i1:i2]
        else:
            lowest = min((w.confidence for w in scored[i1:i2]), default=0.0)
            matched += [ScoredWord(word, lowest) for word in words[j1:j2]]
    return tuple(matched)
