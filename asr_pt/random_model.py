"""Qwen3-ASR checkpoints at the real models' shapes with random weights, built offline.

The real weights cannot be downloaded here, but a checkpoint of the same shapes costs what the real one costs in
memory and time, so the app, eval and train can be measured and sized at real scale. The tokenizer is the tiny one
(`asr_pt.tiny_model`): its special tokens sit at Qwen's ids, which is all generation needs.
"""

from __future__ import annotations

from pathlib import Path

import torch
from accelerate import init_empty_weights
from qwen_asr.core.transformers_backend import Qwen3ASRConfig, Qwen3ASRForConditionalGeneration

from asr_pt.tiny_model import build_tiny_model, build_tokenizer, qwen3_asr_config, save_processor

SIZES = ("tiny", "0.6b", "1.7b")
# The public config.json of Qwen/Qwen3-ASR-1.7B and -0.6B (checked against reimplementations that load them).
REAL_SHAPES: dict[str, tuple[dict, dict]] = {
    "1.7b": (
        {"d_model": 1024, "encoder_layers": 24, "encoder_attention_heads": 16, "encoder_ffn_dim": 4096,
         "output_dim": 2048, "downsample_hidden_size": 480},
        {"hidden_size": 2048, "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
         "head_dim": 128, "intermediate_size": 6144},
    ),
    "0.6b": (
        {"d_model": 896, "encoder_layers": 18, "encoder_attention_heads": 14, "encoder_ffn_dim": 3584,
         "output_dim": 1024, "downsample_hidden_size": 480},
        {"hidden_size": 1024, "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
         "head_dim": 128, "intermediate_size": 3072},
    ),
}  # fmt: skip
SHARED_TEXT_SHAPE = {
    "vocab_size": 151936,  # the real embedding has rows past the tokenizer's last id
    "rope_theta": 1e6,
    "rope_scaling": {"rope_type": "default", "mrope_section": [24, 20, 20]},
}
MAX_SHARD_SIZE = "2GB"  # several safetensors shards and an index, as the Hub's checkpoints of this size come


def real_config(size: str) -> Qwen3ASRConfig:
    """The config of the real model of `size` ("0.6b" or "1.7b"), with the tiny tokenizer's ids."""
    if size not in REAL_SHAPES:
        raise ValueError(f"unknown size {size!r}: choose one of {', '.join(REAL_SHAPES)}")
    audio, text = REAL_SHAPES[size]
    config = qwen3_asr_config(build_tokenizer(), audio, text | SHARED_TEXT_SHAPE)
    config.dtype = torch.bfloat16
    return config


def empty_model(config: Qwen3ASRConfig) -> Qwen3ASRForConditionalGeneration:
    """The network with its parameters on the `meta` device: shapes without memory, in a blink."""
    with init_empty_weights(include_buffers=False):
        model = Qwen3ASRForConditionalGeneration(config)
    model.tie_weights()  # the empty init leaves the output projection untied from the embedding
    return model


def count_parameters(model: torch.nn.Module) -> int:
    """Distinct parameters (the tied embedding and output projection count once)."""
    return sum(p.numel() for p in model.parameters())


def _random_fill(name: str, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    """Norm weights 1, biases 0, everything else N(0, 0.02): the model's own init, in bfloat16 at once."""
    tensor = torch.empty(shape, dtype=torch.bfloat16)
    if name.endswith("bias"):
        return tensor.zero_()
    if len(shape) == 1:
        return tensor.fill_(1.0)
    return tensor.normal_(0.0, 0.02, generator=generator)


def write_random_checkpoint(
    config: Qwen3ASRConfig, out_dir: str | Path, seed: int = 0, max_shard_size: str = MAX_SHARD_SIZE
) -> int:
    """Write a checkpoint of `config` with random bfloat16 weights in safetensors shards; returns its parameter count.

    The network is built on the meta device and each parameter is then allocated in bfloat16 and filled once: a
    float32 init (and the second init `from_config` runs) takes minutes on two cores at 1.7B, this takes seconds.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = empty_model(config)
    generator = torch.Generator().manual_seed(seed)
    for name, parameter in list(model.named_parameters()):
        module_name, _, attribute = name.rpartition(".")
        filled = torch.nn.Parameter(_random_fill(name, parameter.shape, generator), requires_grad=False)
        setattr(model.get_submodule(module_name), attribute, filled)
    model.tie_weights()
    model.save_pretrained(out, max_shard_size=max_shard_size)
    save_processor(build_tokenizer(), out)
    return count_parameters(model)


def build_random_model(out_dir: str | Path, size: str = "1.7b", seed: int = 0) -> tuple[Path, int]:
    """Write a random checkpoint of `size`; returns its folder and parameter count. "tiny" is `tiny_model`'s."""
    if size == "tiny":
        folder = build_tiny_model(out_dir, seed=seed)
        return folder, count_parameters(empty_model(Qwen3ASRConfig.from_pretrained(folder)))
    return Path(out_dir), write_random_checkpoint(real_config(size), out_dir, seed=seed)
