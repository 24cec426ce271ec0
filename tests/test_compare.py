import numpy as np
import pytest
import soundfile as sf

from asr_pt.audio import AudioError, load_audio
from asr_pt.compare import BASE, FINETUNED, compare, pair_name
from asr_pt.confidence import DOUBT_THRESHOLD
from asr_pt.metrics import PROTOCOLS, align_words, score_pair
from asr_pt.models import ASRModel, ModelLoadError
from asr_pt.text import normalize


@pytest.fixture(scope="module")
def finetuned(tiny_model_dir):
    return ASRModel(str(tiny_model_dir), max_new_tokens=8)


@pytest.fixture(scope="module")
def base(other_tiny_model_dir):
    return ASRModel(str(other_tiny_model_dir), max_new_tokens=8)


def test_both_transcripts_are_the_models_own_and_scored_against_each_other(finetuned, base, speech_clips):
    path, _ = speech_clips[1]
    audio = load_audio(path)
    result = compare(path, finetuned, base)
    texts = {side: result.runs[side].transcript.text for side in (FINETUNED, BASE)}
    assert texts == {FINETUNED: finetuned.transcribe(audio).text, BASE: base.transcribe(audio).text}
    assert texts[FINETUNED] != texts[BASE]  # two seeds, two models: the page has something to compare
    assert result.audio_seconds == pytest.approx(len(audio) / 16000) and result.audio_notes == []
    assert list(result.scores) == list(result.diffs) == [pair_name(BASE, FINETUNED)]
    for protocol in PROTOCOLS:
        assert result.scores[pair_name(BASE, FINETUNED)][protocol] == score_pair(
            texts[FINETUNED], texts[BASE], protocol
        )
    assert result.diffs[pair_name(BASE, FINETUNED)] == align_words(normalize(texts[FINETUNED]), normalize(texts[BASE]))
    for side in (FINETUNED, BASE):
        run = result.runs[side]
        assert run.error is None and run.transcript.language == "Portuguese"
        assert run.transcript.truncated == any("output cut at 8 new tokens" in w for w in run.warnings)


def test_a_reference_scores_each_model_in_both_protocols(finetuned, base, speech_clips):
    path, sentence = speech_clips[2]
    result = compare(path, finetuned, base, reference=f"  {sentence}\n")
    assert result.reference == sentence
    assert list(result.scores) == [
        pair_name(BASE, FINETUNED),
        pair_name(FINETUNED, "reference"),
        pair_name(BASE, "reference"),
    ]
    for side in (FINETUNED, BASE):
        text = result.runs[side].transcript.text
        for protocol in PROTOCOLS:
            assert result.scores[pair_name(side, "reference")][protocol] == score_pair(sentence, text, protocol)
        assert result.diffs[pair_name(side, "reference")] == align_words(normalize(sentence), normalize(text))
    data = result.to_dict()
    finetuned_text = result.runs[FINETUNED].transcript.text
    assert data["scores"][pair_name(FINETUNED, "reference")]["written"] == {
        "wer": score_pair(sentence, finetuned_text).wer,
        "cer": score_pair(sentence, finetuned_text).cer,
    }
    assert data["runs"][BASE]["transcript"]["rtf"] == pytest.approx(result.runs[BASE].transcript.rtf)
    words = data["runs"][FINETUNED]["transcript"]["words"]  # what /transcribe returns: the model's doubt per word
    assert [w["word"] for w in words] == result.runs[FINETUNED].transcript.text.split()
    assert all(w["doubtful"] == (w["confidence"] < DOUBT_THRESHOLD) for w in words)


def test_what_was_done_to_the_audio_is_reported(finetuned, base, speech_clips, tmp_path):
    samples, _ = sf.read(speech_clips[0][0])
    stereo = tmp_path / "stereo.flac"
    sf.write(stereo, np.stack([samples, samples], axis=1), 8000)  # played at half speed: still speech
    result = compare(stereo, finetuned, base, language="auto", context="gato, sofá")
    assert any("down-mixed from 2 channels" in note for note in result.audio_notes)
    assert any("resampled from 8000 Hz" in note for note in result.audio_notes)
    assert result.language == "auto"


def test_one_model_that_cannot_load_leaves_the_other_working(base, speech_clips):
    missing = ASRModel("/no/such/model", max_new_tokens=8)
    result = compare(speech_clips[0][0], missing, base, reference="Bom dia.")
    assert result.runs[FINETUNED].transcript is None
    assert "/no/such/model" in result.runs[FINETUNED].error and "tiny-model" in result.runs[FINETUNED].error
    assert result.runs[BASE].transcript.text == base.transcribe(load_audio(speech_clips[0][0])).text
    assert list(result.scores) == [pair_name(BASE, "reference")]


def test_no_model_at_all_is_an_error_naming_both(speech_clips):
    with pytest.raises(ModelLoadError, match=r"/no/model/a.*/no/model/b"):
        compare(speech_clips[0][0], ASRModel("/no/model/a"), ASRModel("/no/model/b"))


@pytest.mark.parametrize(
    "audio, kwargs, error, message",
    [
        (None, {}, AudioError, "no audio"),
        ("clip", {"language": "Klingon"}, ValueError, "unsupported language 'Klingon'"),
        ("clip", {"max_seconds": 1.0}, AudioError, "the limit is 1 s"),
        ("README.md", {}, AudioError, "not readable audio"),
    ],
)
def test_bad_input_is_refused_before_any_model_is_tried(audio, kwargs, error, message, speech_clips):
    """Models that cannot load would raise ModelLoadError: the input's own error must come first."""
    unloadable = ASRModel("/no/model/a"), ASRModel("/no/model/b")
    with pytest.raises(error, match=message):
        compare(speech_clips[0][0] if audio == "clip" else audio, *unloadable, **kwargs)
