"""int8 loading that keeps the weights it quantised for the next start, and the memory it does not hold: every path
must give the very int8 weights (and so the very text) that quantising the checkpoint gives."""

import logging

import numpy as np
import torch

from asr_pt import precision
from asr_pt.audio import load_audio
from asr_pt.int8_cache import INDEX, WEIGHTS, checkpoint_fingerprint
from asr_pt.models import ASRModel
from asr_pt.precision import quantize_int8, quantize_weight, release_mapped_pages
from asr_pt.tiny_model import build_tiny_model


def int8_layers(network: torch.nn.Module) -> dict:
    """Every int8 layer's integers, scale, zero point and bias, by name."""
    layers = {}
    for name, module in network.named_modules():
        if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
            weight, bias = module._packed_params._weight_bias()
            layers[name] = (weight.int_repr(), weight.q_scale(), weight.q_zero_point(), bias)
    return layers


def assert_same_layers(ours: dict, theirs: dict) -> None:
    assert ours.keys() == theirs.keys() and ours
    for name, (integers, scale, zero_point, bias) in ours.items():
        other = theirs[name]
        assert torch.equal(integers, other[0]) and (scale, zero_point) == other[1:3], name
        assert (bias is None and other[3] is None) or torch.equal(bias, other[3]), name


def test_quantising_a_slice_at_a_time_gives_torchs_own_int8_layer(monkeypatch):
    monkeypatch.setattr(precision, "QUANTIZE_ROWS", 7)  # 40 rows: six slices
    torch.manual_seed(0)
    layer = torch.nn.Linear(24, 40).to(torch.bfloat16)
    reference = torch.nn.Linear(24, 40)
    reference.load_state_dict({k: v.float() for k, v in layer.state_dict().items()})
    reference.qconfig = torch.ao.quantization.default_dynamic_qconfig
    expected = torch.ao.nn.quantized.dynamic.Linear.from_float(reference)
    ours = quantize_int8(torch.nn.Sequential(layer))[0]
    assert_same_layers(int8_layers(torch.nn.Sequential(ours)), int8_layers(torch.nn.Sequential(expected)))
    inputs = torch.randn(5, 24)
    assert torch.equal(ours(inputs), expected(inputs))
    assert quantize_weight(layer.weight).int_repr().shape == (40, 24)


def test_embeddings_stay_bfloat16_and_give_exactly_the_float32_lookup():
    table = torch.nn.Embedding(50, 16).to(torch.bfloat16)
    float32_table = torch.nn.Embedding.from_pretrained(table.weight.detach().float())
    network = quantize_int8(torch.nn.Sequential(table, torch.nn.Linear(16, 4).to(torch.bfloat16)))
    ids = torch.tensor([[0, 7, 49, 7]])
    assert network[0].weight.dtype == torch.bfloat16
    assert network[0](ids).dtype == torch.float32 and torch.equal(network[0](ids), float32_table(ids))


def test_releasing_a_tensor_outside_a_file_mapping_leaves_it_untouched():
    tensor = torch.arange(4 * 1024 * 1024, dtype=torch.int32)  # 16 MiB of heap: whole pages inside it
    release_mapped_pages(tensor)
    assert torch.equal(tensor, torch.arange(4 * 1024 * 1024, dtype=torch.int32))


def test_a_released_file_mapped_tensor_reads_the_file_again(tmp_path):
    values = np.arange(2 * 1024 * 1024, dtype=np.int32)
    values.tofile(tmp_path / "weights.bin")
    mapped = torch.from_file(str(tmp_path / "weights.bin"), shared=False, size=values.size, dtype=torch.int32)
    assert int(mapped.sum()) == int(values.sum())  # every page read in
    before = file_pages_kib()
    release_mapped_pages(mapped)
    assert before - file_pages_kib() > 7 * 1024  # of 8 MiB
    assert torch.equal(mapped, torch.from_numpy(values))


def file_pages_kib() -> int:
    """Resident pages of mapped files (Linux)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssFile:"))


def test_a_second_load_reads_the_cache_and_writes_the_same_text(tiny_model_dir, speech_clips, tmp_path):
    audios = [load_audio(path) for path, _ in speech_clips[:2]]
    plain = ASRModel(str(tiny_model_dir), dtype="int8", max_new_tokens=8)
    first = ASRModel(str(tiny_model_dir), dtype="int8", max_new_tokens=8, int8_cache=tmp_path)
    second = ASRModel(str(tiny_model_dir), dtype="int8", max_new_tokens=8, int8_cache=tmp_path)
    texts = [t.text for t in plain.transcribe_batch(audios)]
    assert [t.text for t in first.transcribe_batch(audios)] == texts and first.int8_from_cache is False
    assert [t.text for t in second.transcribe_batch(audios)] == texts and second.int8_from_cache is True
    expected = int8_layers(plain.load().model)
    assert_same_layers(int8_layers(first.load().model), expected)
    assert_same_layers(int8_layers(second.load().model), expected)
    assert second.weight_bytes == plain.weight_bytes
    (entry,) = tmp_path.iterdir()
    assert entry.name == checkpoint_fingerprint(tiny_model_dir)
    assert {path.name for path in entry.iterdir()} == {INDEX, WEIGHTS}


def test_a_changed_checkpoint_is_quantised_again_and_replaces_its_old_entry(tmp_path):
    checkpoint = build_tiny_model(tmp_path / "model", seed=1)
    cache = tmp_path / "cache"
    assert ASRModel(str(checkpoint), dtype="int8", int8_cache=cache).load() and len(list(cache.iterdir())) == 1
    build_tiny_model(checkpoint, seed=2)  # new weights in the same folder
    changed = ASRModel(str(checkpoint), dtype="int8", int8_cache=cache)
    changed.load()
    assert changed.int8_from_cache is False and len(list(cache.iterdir())) == 1
    quantised = ASRModel(str(checkpoint), dtype="int8").load().model
    assert_same_layers(int8_layers(changed.load().model), int8_layers(quantised))


def test_a_damaged_entry_is_quantised_again_and_rewritten(tiny_model_dir, tmp_path, caplog):
    ASRModel(str(tiny_model_dir), dtype="int8", int8_cache=tmp_path).load()
    (entry,) = tmp_path.iterdir()
    with open(entry / WEIGHTS, "r+b") as f:
        f.truncate(100)
    with caplog.at_level(logging.WARNING):
        damaged = ASRModel(str(tiny_model_dir), dtype="int8", int8_cache=tmp_path)
        damaged.load()
    assert damaged.int8_from_cache is False and "not used" in caplog.text and "bytes" in caplog.text
    again = ASRModel(str(tiny_model_dir), dtype="int8", int8_cache=tmp_path)
    again.load()
    assert again.int8_from_cache is True
    assert_same_layers(int8_layers(again.load().model), int8_layers(damaged.load().model))
    (entry / INDEX).write_text("{not json", encoding="utf-8")
    assert ASRModel(str(tiny_model_dir), dtype="int8", int8_cache=tmp_path).load() is not None


def test_a_cache_folder_that_cannot_be_written_does_not_stop_the_load(tiny_model_dir, tmp_path, caplog):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        model = ASRModel(str(tiny_model_dir), dtype="int8", int8_cache=blocked, max_new_tokens=4)
        model.load()
    assert model.int8_from_cache is False and "not written" in caplog.text
    assert model.transcribe(np.zeros(16000, dtype=np.float32)).audio_seconds == 1.0
