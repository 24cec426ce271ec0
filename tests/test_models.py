import threading

import pytest
from conftest import free_port

from asr_pt.audio import load_audio
from asr_pt.models import EOS_TOKEN_IDS, ASRModel, ModelLoadError, supported_languages


def test_loads_lazily_once_and_transcribes_portuguese(tiny_model_dir, speech_clips):
    model = ASRModel(str(tiny_model_dir), max_new_tokens=16)
    assert not model.loaded and model.device == "cpu" and str(model.dtype) == "torch.float32"
    audio = load_audio(speech_clips[0][0])
    transcript = model.transcribe(audio)
    assert model.loaded
    assert transcript.language == "Portuguese"
    assert transcript.audio_seconds == pytest.approx(len(audio) / 16000)
    assert transcript.seconds > 0 and transcript.rtf == pytest.approx(transcript.seconds / transcript.audio_seconds)


def test_concurrent_first_use_loads_one_model(tiny_model_dir, speech_clips):
    model = ASRModel(str(tiny_model_dir), max_new_tokens=4)
    audio = load_audio(speech_clips[0][0])
    loaded, texts = [], []

    def use():
        loaded.append(model.load())
        texts.append(model.transcribe(audio).text)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(m) for m in loaded}) == 1
    assert len(set(texts)) == 1  # greedy decoding of one clip gives one answer, whatever the interleaving


def test_batch_matches_one_by_one_and_keeps_order(tiny_model_dir, speech_clips):
    model = ASRModel(str(tiny_model_dir), max_new_tokens=8)
    audios = [load_audio(path) for path, _ in speech_clips[:4]]
    batch = model.transcribe_batch(audios, language="Portuguese")
    assert [t.audio_seconds for t in batch] == pytest.approx([len(a) / 16000 for a in audios])
    single = [model.transcribe(a).text for a in audios]
    assert [t.text for t in batch] == single


def test_truncation_is_reported_when_generation_hits_the_token_limit_not_when_it_ends(tiny_model_dir, speech_clips):
    """A random model does not write EOS within one token: cut. Forced to write EOS (<|im_end|>) first, it ends within
    the same one-token limit: not cut, so the flag reads how generation ended, not how long the text is."""
    audio = load_audio(speech_clips[0][0])
    assert ASRModel(str(tiny_model_dir), max_new_tokens=1).transcribe(audio).truncated
    ending = ASRModel(str(tiny_model_dir), max_new_tokens=1)
    ending.load().model.thinker.generation_config.sequence_bias = {(EOS_TOKEN_IDS[0],): 100.0}
    assert [t.truncated for t in ending.transcribe_batch([audio, audio[: len(audio) // 2]])] == [False, False]
    assert ending.transcribe(audio).text == ""


def test_automatic_language_detection_and_context(tiny_model_dir, speech_clips):
    model = ASRModel(str(tiny_model_dir), max_new_tokens=8)
    audio = load_audio(speech_clips[0][0])
    transcript = model.transcribe(audio, language="auto", context="gato, sofá")
    assert isinstance(transcript.language, str)  # a random model names no language; parsing must not fail
    assert "Portuguese" in supported_languages()


@pytest.mark.parametrize(
    "model_id, words",
    [
        ("/no/such/folder", ["/no/such/folder", "no folder"]),
        ("Qwen/Qwen3-ASR-1.7B", ["Qwen/Qwen3-ASR-1.7B", "offline", "tiny-model"]),
    ],
)
def test_a_model_that_cannot_load_says_which_and_why(model_id, words):
    with pytest.raises(ModelLoadError) as error:
        ASRModel(model_id).load()
    for word in words:
        assert word in str(error.value)


def test_a_hub_id_that_cannot_be_fetched_fails_before_any_download_is_tried(monkeypatch):
    """Offline (HF_HUB_OFFLINE=1, as the tests run) or with the Hub unreachable, the load says why at once:
    transformers' own attempt, with its retries, took two minutes."""
    from huggingface_hub import constants
    from qwen_asr import Qwen3ASRModel

    attempts = []
    monkeypatch.setattr(Qwen3ASRModel, "from_pretrained", lambda *args, **kwargs: attempts.append(args))
    with pytest.raises(ModelLoadError, match=r"'Qwen/Qwen3-ASR-1\.7B': it is not in the local cache .*\(offline\)"):
        ASRModel("Qwen/Qwen3-ASR-1.7B").load()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{free_port()}")  # a Hub that nothing answers for
    with pytest.raises(ModelLoadError, match="the Hugging Face Hub cannot be reached"):
        ASRModel("Qwen/Qwen3-ASR-1.7B").load()
    assert attempts == []


def test_deleting_a_model_frees_its_weights_without_the_garbage_collector(tiny_model_dir, speech_clips):
    import gc
    import weakref

    model = ASRModel(str(tiny_model_dir), max_new_tokens=4)
    model.transcribe(load_audio(speech_clips[0][0]))
    network = weakref.ref(model.load().model)
    gc.disable()
    try:
        del model
        assert network() is None
    finally:
        gc.enable()


def test_a_failed_load_is_remembered_not_retried(tmp_path):
    model = ASRModel(str(tmp_path / "missing"))
    with pytest.raises(ModelLoadError) as first:
        model.load()
    (tmp_path / "missing").mkdir()  # even if the folder appears, the app keeps the answer it gave
    with pytest.raises(ModelLoadError) as second:
        model.load()
    assert second.value is first.value
