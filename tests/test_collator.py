"""Masking: the loss sees the target tokens and nothing else, in batches of mixed lengths padded on the left."""

from __future__ import annotations

import pytest
import torch

from asr_pt.audio import load_audio
from asr_pt.models import prompt_text, target_text
from train.collator import IGNORE_INDEX, SFTCollator, supervise_targets
from train.finetune import Qwen3ASRForTraining, load_processor

# Short and long transcripts on short and long clips, so every row of the batch is padded differently.
TEXTS = ["Sim.", "O gato dorme no sofá, e a reunião começa às nove horas em ponto.", "Bom dia!", "Olá, tudo bem?"]


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    return load_processor(str(tiny_model_dir))


@pytest.fixture(scope="module")
def mixed_rows(speech_clips):
    clips = [speech_clips[i][0] for i in (0, 7, 2, 5)]  # 1.8 s to 3.7 s
    return [{"audio": str(clip), "text": text} for clip, text in zip(clips, TEXTS, strict=True)]


def supervised_text(processor, input_ids: torch.Tensor, labels: torch.Tensor) -> str:
    return processor.tokenizer.decode(input_ids[labels != IGNORE_INDEX])


def labels_with_issue_70_bug(processor, batch: dict, rows: list[dict]) -> torch.Tensor:
    """QwenLM's recipe as reported in QwenLM/Qwen3-ASR#70: the prompts are tokenized with their audio on their own,
    each prefix length counted from the attention mask, and that many columns masked from the left of the row, as if
    padding were on the right. Kept here, never in the library, to show that the row-by-row check catches it."""
    prefixes = processor(
        text=[prompt_text(processor)] * len(rows),
        audio=[load_audio(row["audio"]) for row in rows],
        padding=True,
        return_tensors="pt",
    )
    labels = batch["input_ids"].clone()
    for row, prefix_length in enumerate(prefixes["attention_mask"].sum(dim=1).tolist()):
        labels[row, :prefix_length] = IGNORE_INDEX
    labels[labels == processor.tokenizer.pad_token_id] = IGNORE_INDEX
    return labels


def test_the_processor_pads_on_the_left_so_rows_are_shifted(processor, mixed_rows):
    batch = SFTCollator(processor)(mixed_rows)
    padding = (batch["attention_mask"] == 0).sum(dim=1)
    assert padding.min() == 0 and len(set(padding.tolist())) == len(mixed_rows)
    assert (batch["attention_mask"][:, -1] == 1).all()  # every row ends on the last column: left padding


def test_supervised_tokens_decode_to_exactly_the_target_row_by_row(processor, mixed_rows):
    batch = SFTCollator(processor)(mixed_rows)
    for row, example in enumerate(mixed_rows):
        expected = target_text(example["text"], "Portuguese") + "<|im_end|>"
        assert supervised_text(processor, batch["input_ids"][row], batch["labels"][row]) == expected


def test_prompt_audio_and_padding_are_never_supervised(processor, mixed_rows):
    batch = SFTCollator(processor)(mixed_rows)
    supervised = batch["labels"] != IGNORE_INDEX
    audio_pad = processor.tokenizer.convert_tokens_to_ids("<|audio_pad|>")
    assert not supervised[batch["attention_mask"] == 0].any()
    assert not supervised[batch["input_ids"] == audio_pad].any()
    # The supervised span is one block at the end of each row, with the prompt (`...assistant\n`) right before it.
    prompt_end = processor.tokenizer("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    for row in range(len(mixed_rows)):
        columns = supervised[row].nonzero().flatten()
        assert columns.tolist() == list(range(int(columns[0]), batch["input_ids"].shape[1]))
        assert batch["input_ids"][row, int(columns[0]) - len(prompt_end) : int(columns[0])].tolist() == prompt_end


def test_the_issue_70_bug_leaks_the_prompt_into_the_loss_and_the_check_catches_it(processor, mixed_rows):
    batch = SFTCollator(processor)(mixed_rows)
    buggy = labels_with_issue_70_bug(processor, batch, mixed_rows)
    padding = (batch["attention_mask"] == 0).sum(dim=1)
    for row, example in enumerate(mixed_rows):
        decoded = supervised_text(processor, batch["input_ids"][row], buggy[row])
        expected = target_text(example["text"]) + "<|im_end|>"
        if padding[row] == 0:
            assert decoded == expected  # the longest row is right, which is why the bug goes unnoticed
        else:
            assert decoded != expected and decoded.endswith(expected)  # prompt tokens leak in before the target


def test_supervise_targets_finds_the_target_with_right_padding_too(processor):
    tokenizer = processor.tokenizer
    targets = [target_text(text) + tokenizer.eos_token for text in TEXTS]
    prompt = "<|im_start|>user\nOlá<|im_end|>\n<|im_start|>assistant\n"
    batch = tokenizer([prompt + t for t in targets], padding=True, padding_side="right", return_tensors="pt")
    target_ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in targets]
    labels = supervise_targets(batch["input_ids"], batch["attention_mask"], target_ids)
    for row, target in enumerate(targets):
        assert supervised_text(processor, batch["input_ids"][row], labels[row]) == target


def test_a_target_that_does_not_end_the_row_is_refused(processor):
    tokenizer = processor.tokenizer
    batch = tokenizer(["language Portuguese<asr_text>Sim.<|im_end|>"], return_tensors="pt")
    with pytest.raises(ValueError, match="does not end with its target"):
        supervise_targets(batch["input_ids"], batch["attention_mask"], [tokenizer("Não.")["input_ids"]])


def test_training_loss_equals_the_thinkers_own_loss(tiny_model_dir, processor, mixed_rows):
    """The training forward projects only supervised positions; the loss must be the one qwen-asr's thinker gives."""
    model = Qwen3ASRForTraining.from_pretrained(str(tiny_model_dir), dtype=torch.float32).eval()
    batch = SFTCollator(processor)(mixed_rows)
    with torch.no_grad():
        ours = model(**batch).loss
        reference = model.thinker(**batch).loss
        summed = model(**batch, num_items_in_batch=1).loss
    assert ours.item() == pytest.approx(reference.item(), rel=1e-5)
    assert summed.item() == pytest.approx(reference.item() * int((batch["labels"] != IGNORE_INDEX).sum()), rel=1e-5)
