"""Batches for supervised fine-tuning: Qwen3-ASR's chat prompt with the audio, then the target the model must write.

The model only learns from the target, `language Portuguese<asr_text>` + transcript + `<|im_end|>`: every other
position (the prompt, the audio placeholders, the padding) is labelled -100. The processor pads on the left, so
where a row's target sits depends on its padding; it is found from the end of the row's real tokens, never from a
prefix length counted from column 0 (QwenLM's recipe does that, and leaks the prompt into the loss: QwenLM/Qwen3-ASR
issue #70).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from asr_pt.audio import SAMPLE_RATE, load_audio
from asr_pt.models import DEFAULT_LANGUAGE, prompt_text, target_text

IGNORE_INDEX = -100  # what torch's cross-entropy skips


@dataclass
class SFTCollator:
    """Turns `{"audio": path|bytes|samples, "text": written-form transcript}` rows into a batch with labels."""

    processor: Any
    language: str = DEFAULT_LANGUAGE

    def __call__(self, rows: Sequence[dict]) -> dict[str, torch.Tensor]:
        audios = [row["audio"] if isinstance(row["audio"], np.ndarray) else load_audio(row["audio"]) for row in rows]
        tokenizer = self.processor.tokenizer
        targets = [target_text(row["text"], self.language) + tokenizer.eos_token for row in rows]
        prompt = prompt_text(self.processor)
        batch = self.processor(
            text=[prompt + target for target in targets],
            audio=audios,
            sampling_rate=SAMPLE_RATE,
            padding=True,
            return_tensors="pt",
        )
        target_ids = [tokenizer(target, add_special_tokens=False)["input_ids"] for target in targets]
        batch["labels"] = supervise_targets(batch["input_ids"], batch["attention_mask"], target_ids)
        return dict(batch)


def supervise_targets(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, target_ids: Sequence[Sequence[int]]
) -> torch.Tensor:
    """Labels that are -100 everywhere but on each row's target tokens, which end where the row's real tokens end.

    Works with padding on either side. Raises if a row does not end with its target's tokens, which would mean the
    prompt and the target tokenize differently together than apart.
    """
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    for row, target in enumerate(target_ids):
        end = int(attention_mask[row].nonzero().max()) + 1
        start = end - len(target)
        if start < 0 or input_ids[row, start:end].tolist() != list(target):
            raise ValueError(
                f"row {row} does not end with its target's tokens; the prompt and target merge when tokenized"
            )
        labels[row, start:end] = input_ids[row, start:end]
    return labels
