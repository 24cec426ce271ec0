"""Live transcription (asr_pt.streaming) on the tiny model: qwen-asr's streaming algorithm, its limits and its input
checks, without a browser."""

import functools

import librosa
import numpy as np
import pytest

from asr_pt.audio import AudioError, load_audio
from asr_pt.models import ASRModel
from asr_pt.streaming import LiveStream, transcribe_step

RATE = 48000  # what a browser's microphone records at


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return ASRModel(str(tiny_model_dir), max_new_tokens=8)


@pytest.fixture(scope="module")
def step(model):
    return functools.partial(transcribe_step, model)


@pytest.fixture(scope="module")
def microphone(speech_clips):
    """Two clips as a 48 kHz int16 microphone gives them, cut in half-second pieces."""

    def pieces(clip: int) -> list[np.ndarray]:
        samples = librosa.resample(load_audio(speech_clips[clip][0]), orig_sr=16000, target_sr=RATE)
        pcm = (samples * 32767).astype(np.int16)
        return [pcm[i : i + RATE // 2] for i in range(0, len(pcm), RATE // 2)]

    return pieces


def record_prompts(model, monkeypatch) -> list[str]:
    prompts = []
    generate = model.generate_from_prompt

    def spy(prompt, audio):
        prompts.append(prompt)
        return generate(prompt, audio)

    monkeypatch.setattr(model, "generate_from_prompt", spy)
    return prompts


def test_every_two_seconds_all_audio_is_transcribed_again_with_the_text_so_far_as_prefix(
    model, step, microphone, monkeypatch
):
    prompts = record_prompts(model, monkeypatch)
    stream = LiveStream(model, max_seconds=30)
    raw_before_step = []
    updates = []
    for piece in microphone(0) * 4:  # 7.7 s: three full chunks, the third with a prefix, and a tail
        raw_before_step.append(stream.state._raw_decoded)
        updates.append(stream.feed(RATE, piece, step))
    stream.finish(step=step)
    heard = [step.heard_seconds for step in stream.steps]
    assert heard[:-1] == [2.0 * (i + 1) for i in range(len(heard) - 1)]  # one step per full 2 s chunk, then the tail
    assert heard[-1] == pytest.approx(stream.heard_seconds) and len(stream.audio) == round(stream.heard_seconds * 16000)
    assert sum(updates) == len(stream.steps) - 1
    prompt_raw = stream.state.prompt_raw
    assert prompt_raw.endswith("language Portuguese<asr_text>") and prompts[:2] == [prompt_raw, prompt_raw]
    tokenizer = model.load().processor.tokenizer
    before_third = [raw for raw, updated in zip(raw_before_step, updates, strict=True) if updated][2]
    expected_prefix = tokenizer.decode(tokenizer.encode(before_third)[:-5])
    assert prompts[2] == prompt_raw + expected_prefix and expected_prefix
    assert stream.text and stream.finished == "the recording stopped"


def test_streams_of_two_visitors_never_mix(model, step, microphone):
    alone = {}
    for clip in (1, 2):
        stream = LiveStream(model)
        for piece in microphone(clip):
            stream.feed(RATE, piece, step)
        stream.finish(step=step)
        alone[clip] = (stream.text, len(stream.audio))
    first, second = LiveStream(model), LiveStream(model)
    for a, b in zip(microphone(1), microphone(2), strict=False):  # their pieces arrive interleaved
        first.feed(RATE, a, step)
        second.feed(RATE, b, step)
    for stream, clip in ((first, 1), (second, 2)):
        for piece in microphone(clip)[len(microphone(1 if clip == 2 else 2)) :]:
            stream.feed(RATE, piece, step)
        stream.finish(step=step)
    assert (first.text, len(first.audio)) == alone[1]
    assert (second.text, len(second.audio)) == alone[2]
    assert alone[1] != alone[2]


def test_a_stream_stops_at_its_limit_and_says_why(model, step, microphone):
    stream = LiveStream(model, max_seconds=3)
    pieces = microphone(0) * 2
    updates = [stream.feed(RATE, piece, step) for piece in pieces]
    assert stream.heard_seconds == 3.0 and len(stream.audio) == 48000
    assert stream.finished == "stopped at 3 s, the longest a live stream may run"
    assert [step.heard_seconds for step in stream.steps] == [2.0, 3.0]
    assert not any(updates[7:])  # nothing is heard or transcribed after the limit
    assert stream.finish(step=step) is False


@pytest.mark.parametrize(
    "rate, piece, message",
    [
        (0, np.zeros(100, np.int16), "unsupported sample rate 0 Hz"),
        (10**9, np.zeros(100, np.int16), "unsupported sample rate"),
        (48000.0, np.zeros(100, np.int16), "must be an integer"),
        (True, np.zeros(100, np.int16), "must be an integer"),
        (48000, np.zeros((2, 2, 2), np.int16), "must be (samples,) or (samples, channels)"),
        (48000, np.zeros((100, 1000), np.int16), "must be (samples,) or (samples, channels)"),
        (48000, np.zeros(48000 * 6, np.int16), "at most 5 s"),
        (48000, np.full(100, np.nan, np.float32), "NaN"),
        (48000, np.array(["a", "b"]), "unsupported sample type"),
    ],
)
def test_pieces_no_microphone_sends_are_refused(model, step, rate, piece, message):
    stream = LiveStream(model)
    with pytest.raises(AudioError, match=message.replace("(", r"\(").replace(")", r"\)")):
        stream.feed(rate, piece, step)
    assert stream.heard_seconds == 0


def test_the_sample_rate_cannot_change_mid_stream(model, step):
    stream = LiveStream(model)
    stream.feed(48000, np.zeros(4800, np.int16), step)
    with pytest.raises(AudioError, match="changed from 48000 to 16000 Hz"):
        stream.feed(16000, np.zeros(1600, np.int16), step)


def test_an_unknown_language_is_refused(model):
    with pytest.raises(ValueError, match="Klingon"):
        LiveStream(model, language="Klingon")
