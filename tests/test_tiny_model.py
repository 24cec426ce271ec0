import json
import subprocess
import sys

import numpy as np
from qwen_asr import Qwen3ASRModel
from transformers import AutoTokenizer

from asr_pt.audio import load_audio
from asr_pt.tiny_model import SPECIAL_TOKEN_IDS, build_tokenizer


def test_command_line_builds_a_checkpoint_that_qwen_asr_loads_and_runs(tmp_path, speech_clips):
    out = tmp_path / "tiny"
    subprocess.run([sys.executable, "-m", "asr_pt", "tiny-model", str(out), "--seed", "1"], check=True)
    size = sum(f.stat().st_size for f in out.iterdir())
    assert size < 100e6, f"tiny checkpoint is {size / 1e6:.1f} MB"
    thinker = json.loads((out / "config.json").read_text())["thinker_config"]  # the one that learns, as train's tests
    assert (thinker["text_config"]["hidden_size"], thinker["audio_config"]["initializer_range"]) == (128, 0.3)

    model = Qwen3ASRModel.from_pretrained(str(out), max_new_tokens=16)
    path, _ = speech_clips[0]
    [result] = model.transcribe(str(path), language="Portuguese")
    assert result.language == "Portuguese"
    assert isinstance(result.text, str)


def test_special_tokens_sit_at_qwens_ids_so_generation_can_stop(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKEN_IDS} == SPECIAL_TOKEN_IDS
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.audio_token == "<|audio_pad|>"
    # <asr_text> must survive skip_special_tokens, or qwen-asr cannot split language from text
    ids = tokenizer("language Portuguese<asr_text>olá").input_ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == "language Portuguese<asr_text>olá"


def test_tokenization_is_identical_after_qwen_asr_loads_it(tiny_model_dir):
    """qwen-asr loads with fix_mistral_regex=True, which swaps the pre-tokenizer of large vocabularies."""
    loaded = Qwen3ASRModel.from_pretrained(str(tiny_model_dir)).processor.tokenizer
    built = build_tokenizer()
    for text in ["Bom dia, como estás?", "A ação do filme 1234 começa às 9h.", "  espaços\n\nlinhas  ", "ÉÇÃÕ!?…"]:
        assert loaded(text).input_ids == built(text).input_ids
        assert loaded.decode(loaded(text).input_ids) == text


def test_prompt_renders_like_qwen3_asr(tiny_model_dir):
    model = Qwen3ASRModel.from_pretrained(str(tiny_model_dir))
    assert model._build_text_prompt("contexto", "Portuguese") == (
        "<|im_start|>system\ncontexto<|im_end|>\n<|im_start|>user\n"
        "<|audio_start|><|audio_pad|><|audio_end|><|im_end|>\n<|im_start|>assistant\nlanguage Portuguese<asr_text>"
    )


def test_seeds_give_different_weights(tiny_model_dir, other_tiny_model_dir):
    from safetensors.numpy import load_file

    first = load_file(tiny_model_dir / "model.safetensors")
    second = load_file(other_tiny_model_dir / "model.safetensors")
    assert first.keys() == second.keys()
    assert any(not np.array_equal(first[k], second[k]) for k in first)


def test_batch_of_clips_transcribes_through_qwen_asr(tiny_model_dir, speech_clips):
    model = Qwen3ASRModel.from_pretrained(str(tiny_model_dir), max_new_tokens=8)
    audios = [(load_audio(path), 16000) for path, _ in speech_clips[:3]]
    results = model.transcribe(audios, language=None)
    assert len(results) == 3
