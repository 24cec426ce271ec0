import pytest
import torch

from asr_pt.audio import load_audio
from asr_pt.models import ASRModel
from asr_pt.precision import quantize_int8, weight_bytes
from asr_pt.settings import from_environment


def test_int8_stores_linear_weights_in_a_quarter_of_the_bytes():
    network = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.LayerNorm(32)).to(torch.bfloat16)
    assert weight_bytes(network) == (64 * 32 + 32 + 2 * 32) * 2
    quantize_int8(network)
    assert not any(type(module) is torch.nn.Linear for module in network.modules())
    assert weight_bytes(network) == 64 * 32 * 1 + 32 * 4 + 2 * 32 * 4  # int8 weights; float32 bias and norm
    output = network(torch.randn(3, 64))
    assert output.dtype == torch.float32 and output.shape == (3, 32)


def test_int8_follows_float32_closely_on_a_layer():
    torch.manual_seed(0)
    layer = torch.nn.Linear(256, 256)
    inputs = torch.randn(8, 256)
    expected = layer(inputs)
    quantized = quantize_int8(torch.nn.Sequential(layer))(inputs)
    assert (quantized - expected).abs().max() < 0.05 * expected.abs().max()


def test_an_int8_model_transcribes_and_holds_no_float_linear_layer(tiny_model_dir, speech_clips):
    model = ASRModel(str(tiny_model_dir), dtype="int8", max_new_tokens=8)
    transcript = model.transcribe(load_audio(speech_clips[0][0]))
    assert transcript.language == "Portuguese" and model.dtype == "int8"
    network = model.load().model
    assert not any(type(module) is torch.nn.Linear for module in network.modules())
    assert model.weight_bytes == weight_bytes(network) and model.measured_rtf == pytest.approx(transcript.rtf)


def test_asr_pt_dtype_overrides_the_default_and_bad_choices_are_refused(monkeypatch, tiny_model_dir):
    assert ASRModel(str(tiny_model_dir)).dtype == "float32"
    monkeypatch.setenv("ASR_PT_DTYPE", "bfloat16")
    from_environment.cache_clear()  # the environment is read once a process: read it again for this test
    try:
        assert ASRModel(str(tiny_model_dir)).dtype == "bfloat16"
    finally:
        monkeypatch.delenv("ASR_PT_DTYPE")
        from_environment.cache_clear()
    assert ASRModel(str(tiny_model_dir)).dtype == "float32"
    with pytest.raises(ValueError, match="unknown dtype 'int4'"):
        ASRModel(str(tiny_model_dir), dtype="int4")
    with pytest.raises(ValueError, match="int8 .* runs on CPU only"):
        ASRModel(str(tiny_model_dir), dtype="int8", device="cuda")
