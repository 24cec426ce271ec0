"""Word confidence: each word is the product of its tokens' probabilities, on the tokenizer Qwen3-ASR uses."""

from __future__ import annotations

import math

import pytest
import torch

from asr_pt.confidence import DOUBT_THRESHOLD, ChosenTokenLogProbs, ScoredWord, match_words, word_confidences
from asr_pt.models import ASR_TEXT_TAG
from train.finetune import load_processor

TEXT = "Não, o guarda-chuva é do avô!"


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_processor(str(tiny_model_dir)).tokenizer


def test_each_word_gets_the_product_of_its_tokens(tokenizer):
    ids = tokenizer(TEXT).input_ids
    assert len(ids) > len(TEXT.split())  # words of several tokens, accented ones split inside a character
    log_probs = [-0.01 * (index + 1) for index in range(len(ids))]
    scored = word_confidences(tokenizer, ids, log_probs, after="")
    assert [w.word for w in scored] == TEXT.split()
    # a token counts towards the words of the characters it completes (or of the next character, if none); a space
    # belongs to the word after it
    expected, position = [0.0] * len(scored), 0
    for index, log_prob in enumerate(log_probs):
        end = len(tokenizer.decode(ids[: index + 1]).rstrip("\ufffd"))
        span = range(position, max(end, position + 1))
        words = {len(TEXT[: c + 1].split()) - (TEXT[c] != " ") for c in span}
        for word in words:
            expected[word] += log_prob
        position = max(position, end)
    assert [w.confidence for w in scored] == pytest.approx([math.exp(x) for x in expected])
    assert math.prod(w.confidence for w in scored) == pytest.approx(math.exp(sum(log_probs)))


def test_only_the_words_after_the_tag_count(tokenizer):
    ids = tokenizer(f"language Portuguese{ASR_TEXT_TAG}bom dia").input_ids
    scored = word_confidences(tokenizer, ids, [-0.1] * len(ids), after=ASR_TEXT_TAG)
    assert [w.word for w in scored] == ["bom", "dia"]
    assert all(0 < w.confidence < 1 for w in scored)
    assert word_confidences(tokenizer, [], [], after=ASR_TEXT_TAG) == []


def test_the_recorder_keeps_the_chosen_tokens_probabilities_and_changes_nothing():
    recorder = ChosenTokenLogProbs()
    steps = [torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 5.0]]), torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0]])]
    chosen = torch.tensor([[0, 1], [2, 0]])  # row 0 takes token 0 then 1; row 1 token 2 then 0
    prompt = torch.zeros(2, 3, dtype=torch.long)
    for step, scores in enumerate(steps):
        assert recorder(torch.cat([prompt, chosen[:, :step]], dim=1), scores) is scores
    expected = torch.stack(
        [torch.log_softmax(s, -1).gather(1, chosen[:, i : i + 1])[:, 0] for i, s in enumerate(steps)]
    )
    assert torch.allclose(recorder.chosen(chosen), expected.T)


def test_words_the_parser_changed_take_the_lowest_confidence_of_those_they_replace():
    scored = [ScoredWord("bom", 0.9), ScoredWord("dia", 0.8), ScoredWord("dia", 0.3), ScoredWord("ana", 0.7)]
    assert match_words("bom dia dia ana", scored) == tuple(scored)
    assert match_words("bom dia ana", scored) == (scored[0], scored[1], scored[3])
    assert match_words("bom tarde ana", scored) == (scored[0], ScoredWord("tarde", 0.3), scored[3])
    assert ScoredWord("x", DOUBT_THRESHOLD - 0.01).doubtful and not ScoredWord("x", DOUBT_THRESHOLD).doubtful


def test_transcripts_carry_one_confidence_per_word(tiny_model_dir, speech_clips):
    from asr_pt.audio import load_audio
    from asr_pt.models import ASRModel

    audio = load_audio(str(speech_clips[0][0]))
    model = ASRModel(str(tiny_model_dir), max_new_tokens=8)
    for transcript in [*model.generate_batch([audio, audio[:16000]]), model.transcribe(audio)]:
        assert [w.word for w in transcript.words] == transcript.text.split()
        assert all(0.0 <= w.confidence <= 1.0 for w in transcript.words)
    without = ASRModel(str(tiny_model_dir), max_new_tokens=8, word_confidence=False).generate_batch([audio])[0]
    assert without.words == () and without.text == model.generate_batch([audio])[0].text
