import subprocess
import sys

import pytest
import torch
from qwen_asr import Qwen3ASRModel
from safetensors import safe_open

from asr_pt.audio import load_audio
from asr_pt.random_model import count_parameters, empty_model, real_config, write_random_checkpoint
from asr_pt.tiny_model import SPECIAL_TOKEN_IDS, build_config, build_tokenizer


def decoder_parameters(hidden: int, layers: int, heads: int, kv_heads: int, head_dim: int, ffn: int) -> int:
    """Qwen3's decoder counted by hand: attention with q/k norms, SwiGLU, two RMSNorms per layer, a final norm."""
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2 + 2 * head_dim
    return layers * (attention + 3 * hidden * ffn + 2 * hidden) + hidden


@pytest.mark.parametrize(
    ("size", "audio", "text", "total"),
    [
        ("1.7b", (1024, 24, 16, 4096, 2048), (2048, 28, 16, 8, 128, 6144), (2.0e9, 2.1e9)),
        ("0.6b", (896, 18, 14, 3584, 1024), (1024, 28, 16, 8, 128, 3072), (0.75e9, 0.8e9)),
    ],
)
def test_real_sizes_have_the_published_shapes_without_allocating_them(size, audio, text, total):
    config = real_config(size)
    audio_config, text_config = config.thinker_config.audio_config, config.thinker_config.text_config
    d_model, layers, heads, ffn, output_dim = audio
    assert (audio_config.d_model, audio_config.encoder_layers, audio_config.encoder_attention_heads) == audio[:3]
    assert (audio_config.encoder_ffn_dim, audio_config.output_dim) == (ffn, output_dim)
    assert (audio_config.downsample_hidden_size, audio_config.n_window, audio_config.n_window_infer) == (480, 50, 800)
    assert text_config.rope_theta == 1e6 and text_config.rope_scaling["mrope_section"] == [24, 20, 20]
    assert text_config.tie_word_embeddings

    model = empty_model(config)  # on the meta device: no memory
    thinker = model.thinker
    assert thinker.model.embed_tokens.weight.device.type == "meta"
    assert thinker.lm_head.weight is thinker.model.embed_tokens.weight
    assert thinker.model.embed_tokens.weight.shape == (151936, text[0])
    assert count_parameters(thinker.model) - thinker.model.embed_tokens.weight.numel() == decoder_parameters(*text)
    assert len(thinker.audio_tower.layers) == layers
    assert thinker.audio_tower.layers[0].fc1.weight.shape == (ffn, d_model)
    assert total[0] < count_parameters(model) < total[1]


def test_random_checkpoint_is_sharded_bfloat16_and_loads_through_qwen_asr(tmp_path, speech_clips):
    """The real sizes' path (meta build, bfloat16 fill, sharded save) on the tiny config, with tiny shards."""
    config = build_config(build_tokenizer())
    parameters = write_random_checkpoint(config, tmp_path, seed=3, max_shard_size="4MB")
    shards = sorted(tmp_path.glob("model-*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "model.safetensors.index.json").exists()
    stored = 0
    for shard in shards:
        with safe_open(shard, "pt") as f:
            for key in f.keys():
                tensor = f.get_tensor(key)
                assert tensor.dtype == torch.bfloat16, key
                stored += tensor.numel()
    assert stored == parameters  # the tied output projection is stored once

    model = Qwen3ASRModel.from_pretrained(str(tmp_path), max_new_tokens=4)
    tokenizer = model.processor.tokenizer
    assert {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKEN_IDS} == SPECIAL_TOKEN_IDS
    [result] = model.transcribe((load_audio(speech_clips[0][0]), 16000), language="Portuguese")
    assert result.language == "Portuguese"


def test_command_line_builds_the_tiny_size_and_prints_its_parameter_count(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "asr_pt", "random-model", str(tmp_path), "--size", "tiny", "--seed", "4"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    model = Qwen3ASRModel.from_pretrained(str(tmp_path))
    assert f"{count_parameters(model.model):,} parameters" in out
