"""A tiny random Qwen3-ForcedAligner checkpoint, built offline like the tiny ASR model of `asr_pt.tiny_model`.

Qwen3-ForcedAligner is Qwen3-ASR's network with a classification head instead of the vocabulary projection: the
transcript goes in with two `<timestamp>` tokens after each word, and at each of them the head picks one of
`classify_num` classes, a time in steps of `timestamp_segment_time` milliseconds. qwen-asr picks that head when the
thinker's `model_type` contains "forced_aligner". The ids and sizes below are those of Qwen/Qwen3-ForcedAligner-0.6B,
so this checkpoint loads and runs through the same `Qwen3ForcedAligner.from_pretrained` path as the real one. Its
timings are random until trained.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from qwen_asr.core.transformers_backend import Qwen3ASRConfig, Qwen3ASRForConditionalGeneration, Qwen3ASRProcessor
from transformers import WhisperFeatureExtractor

from asr_pt.tiny_model import CHAT_TEMPLATE, SPECIAL_TOKEN_IDS, build_config, build_tokenizer

TIMESTAMP_TOKEN = "<timestamp>"
TIMESTAMP_TOKEN_ID = 151705
TIMESTAMP_SEGMENT_MS = 80  # one class is 80 ms of audio
CLASSIFY_NUM = 5000  # so the aligner reaches 400 s
ALIGNER_VOCAB_SIZE = 152064  # the aligner's embedding table, larger than the ASR model's
ALIGNER_MODEL_TYPE = "qwen3_forced_aligner"


def build_tiny_aligner(out_dir: str | Path, seed: int = 0, hidden_size: int = 32) -> Path:
    """Write a loadable tiny Qwen3-ForcedAligner checkpoint to `out_dir`; different seeds give different weights."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(special_token_ids=SPECIAL_TOKEN_IDS | {TIMESTAMP_TOKEN: TIMESTAMP_TOKEN_ID})
    thinker = build_config(tokenizer, hidden_size).thinker_config.to_dict()
    thinker.update(model_type=ALIGNER_MODEL_TYPE, classify_num=CLASSIFY_NUM)
    thinker["text_config"].update(vocab_size=ALIGNER_VOCAB_SIZE, tie_word_embeddings=False)  # 5000 rows, not 152064
    config = Qwen3ASRConfig(
        thinker_config=thinker,
        support_languages=["Portuguese"],
        timestamp_token_id=TIMESTAMP_TOKEN_ID,
        timestamp_segment_time=TIMESTAMP_SEGMENT_MS,
        tie_word_embeddings=False,
    )
    Qwen3ASRForConditionalGeneration(config).save_pretrained(out)
    # PretrainedConfig saves a sub-config's class `model_type`, not the instance's: put the aligner's back.
    config_path = out / "config.json"
    saved = json.loads(config_path.read_text(encoding="utf-8"))
    saved["thinker_config"]["model_type"] = ALIGNER_MODEL_TYPE
    config_path.write_text(json.dumps(saved, indent=2), encoding="utf-8")
    feature_extractor = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000)
    Qwen3ASRProcessor(feature_extractor, tokenizer, chat_template=CHAT_TEMPLATE).save_pretrained(out)
    return out
