"""A tiny random Qwen3-ASR checkpoint, built offline through the real qwen-asr and transformers classes.

No machine here can download the 1.7B models, so every test loads this checkpoint through the same
`Qwen3ASRModel.from_pretrained` path the app uses for the real ones. Its output is gibberish until trained.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from qwen_asr.core.transformers_backend import (
    Qwen3ASRConfig,
    Qwen3ASRForConditionalGeneration,
    Qwen3ASRProcessor,
)
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import Qwen2TokenizerFast, WhisperFeatureExtractor

SENTENCES_PATH = Path(__file__).parent / "data" / "sentences_pt.txt"

# qwen-asr's generate() stops on these exact ids, so the tiny tokenizer puts its special tokens where Qwen's are.
SPECIAL_TOKEN_IDS = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<|audio_start|>": 151669,
    "<|audio_end|>": 151670,
    "<|audio_pad|>": 151676,
}
ASR_TEXT_TOKEN = "<asr_text>"  # an added token that is not special: decoding keeps it, so qwen-asr can parse it
VOCAB_SIZE = 151680
# A tiny model that can learn a handful of clips (see `build_tiny_model`): what `python -m asr_pt tiny-model` builds.
LEARNABLE = {"hidden_size": 128, "audio_initializer_range": 0.3}

# transformers 4.57.6 swaps the first pre-tokenizer for this regex whenever qwen-asr loads a tokenizer of over 100k
# tokens (`fix_mistral_regex=True`). Building with the same regex makes that swap a no-op, so text tokenizes the same
# before saving and after loading.
PRETOKENIZER_REGEX = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message.role + '\\n' }}"
    "{%- if message.content is string -%}{{ message.content }}"
    "{%- else -%}{%- for part in message.content -%}"
    "{%- if part.type == 'audio' -%}{{ '<|audio_start|><|audio_pad|><|audio_end|>' }}"
    "{%- elif part.type == 'text' -%}{{ part.text }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)


def build_tokenizer(merges: int = 400) -> Qwen2TokenizerFast:
    """A byte-level BPE trained on the shipped Portuguese sentences, padded with unused entries up to Qwen's ids."""
    sentences = SENTENCES_PATH.read_text(encoding="utf-8").splitlines()
    pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZER_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trained = Tokenizer(models.BPE())
    trained.pre_tokenizer = pre_tokenizer
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trained.train_from_iterator(
        sentences + ["language Portuguese"],
        trainers.BpeTrainer(vocab_size=len(alphabet) + merges, initial_alphabet=alphabet, show_progress=False),
    )
    state = json.loads(trained.to_str())["model"]
    vocab: dict[str, int] = state["vocab"]
    first_special = min(SPECIAL_TOKEN_IDS.values())
    vocab.update({f"<|unused_{i}|>": i for i in range(len(vocab), first_special)})
    merge_pairs = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]

    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merge_pairs))
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.ByteLevel()
    by_id = {i: t for t, i in SPECIAL_TOKEN_IDS.items()}
    for token_id in range(first_special, max(by_id) + 1):
        tokenizer.add_special_tokens([by_id.get(token_id, f"<|reserved_{token_id}|>")])
    tokenizer.add_tokens([ASR_TEXT_TOKEN])

    return Qwen2TokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        extra_special_tokens={
            "audio_token": "<|audio_pad|>",
            "audio_bos_token": "<|audio_start|>",
            "audio_eos_token": "<|audio_end|>",
        },
    )


def build_config(
    tokenizer: Qwen2TokenizerFast, hidden_size: int = 32, audio_initializer_range: float = 0.02
) -> Qwen3ASRConfig:
    """Qwen3-ASR's architecture at toy size; the vocabulary stays full-size so the real special ids exist."""
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKEN_IDS}
    if ids != SPECIAL_TOKEN_IDS:
        raise RuntimeError(f"tiny tokenizer put special tokens at {ids}, not at Qwen's ids")
    return Qwen3ASRConfig(
        thinker_config={
            "audio_config": {
                "num_mel_bins": 128,
                "d_model": 32,
                "encoder_layers": 1,
                "encoder_attention_heads": 2,
                "encoder_ffn_dim": 64,
                "downsample_hidden_size": 8,
                "output_dim": hidden_size,
                "n_window": 50,
                "n_window_infer": 800,
                "initializer_range": audio_initializer_range,
            },
            "text_config": {
                "vocab_size": VOCAB_SIZE,
                "hidden_size": hidden_size,
                "intermediate_size": 2 * hidden_size,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "num_key_value_heads": 1,
                "head_dim": 16,
                "rope_scaling": {"mrope_section": [4, 2, 2]},
                "tie_word_embeddings": True,
            },
            "audio_token_id": ids["<|audio_pad|>"],
            "audio_start_token_id": ids["<|audio_start|>"],
            "audio_end_token_id": ids["<|audio_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        support_languages=["Portuguese"],
    )


def build_tiny_model(
    out_dir: str | Path, seed: int = 0, hidden_size: int = 32, audio_initializer_range: float = 0.02
) -> Path:
    """Write a loadable tiny Qwen3-ASR checkpoint to `out_dir`; different seeds give different weights.

    The defaults make a model that only has to load and run. One that must learn a handful of clips (the training
    tests) needs `audio_initializer_range=0.3`: at 0.02 the audio encoder's three stacked convolutions shrink the mel
    features until its sinusoidal position embedding drowns them out, every clip comes out alike, and a model can only
    tell clips apart by their length. A wider `hidden_size` (128) then learns them in a minute or two on CPU.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    model = Qwen3ASRForConditionalGeneration(build_config(tokenizer, hidden_size, audio_initializer_range))
    model.save_pretrained(out)
    feature_extractor = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000)
    Qwen3ASRProcessor(feature_extractor, tokenizer, chat_template=CHAT_TEMPLATE).save_pretrained(out)
    return out
