import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from asr_pt.audio import (
    MIN_SECONDS,
    SAMPLE_RATE,
    AudioError,
    duration,
    load_audio,
    read_audio,
    write_wav,
)


def sine(seconds: float = 1.0, sample_rate: int = SAMPLE_RATE, frequency: float = 440.0, amplitude: float = 0.5):
    time = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def dominant_frequency(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)[np.argmax(spectrum)])


def test_wav_int16_and_float_read_at_their_level(tmp_path):
    for subtype in ("PCM_16", "FLOAT"):
        path = tmp_path / f"{subtype}.wav"
        sf.write(path, sine(), SAMPLE_RATE, subtype=subtype)
        audio = read_audio(path)
        assert audio.samples.dtype == np.float32
        assert audio.samples.shape == (SAMPLE_RATE,)
        assert np.abs(audio.samples).max() == pytest.approx(0.5, abs=1e-3)
        assert audio.notes == []
        assert (audio.original_sample_rate, audio.channels) == (SAMPLE_RATE, 1)


@pytest.mark.parametrize("file_format", ["WAV", "FLAC", "OGG", "MP3"])
def test_every_supported_format_is_read(tmp_path, file_format):
    path = tmp_path / f"clip.{file_format.lower()}"
    sf.write(path, sine(sample_rate=44100), 44100, format=file_format)
    samples = load_audio(str(path))
    assert duration(samples) == pytest.approx(1.0, abs=0.06)  # MP3 encoders add a few frames of padding
    assert dominant_frequency(samples) == pytest.approx(440, abs=2)
    assert np.abs(samples).max() == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize("sample_rate", [44100, 8000])
def test_resampling_keeps_duration_and_pitch(sample_rate):
    audio = read_audio((sine(2.0, sample_rate), sample_rate))
    assert len(audio.samples) == 2 * SAMPLE_RATE
    assert dominant_frequency(audio.samples) == pytest.approx(440, abs=1)
    assert audio.original_sample_rate == sample_rate
    assert audio.notes == [f"resampled from {sample_rate} Hz to {SAMPLE_RATE} Hz"]


def test_resampled_full_scale_audio_stays_within_one():
    square = np.sign(sine(1.0, 44100)).astype(np.float32)
    samples = load_audio((square, 44100))
    assert np.abs(samples).max() <= 1.0


@pytest.mark.parametrize("channels", [2, 6])
def test_files_with_several_channels_are_down_mixed(tmp_path, channels):
    data = np.zeros((SAMPLE_RATE, channels), dtype=np.float32)
    data[:, 0] = sine(amplitude=0.6)  # one speaking channel, the rest silent
    path = tmp_path / "multichannel.wav"
    sf.write(path, data, SAMPLE_RATE)
    audio = read_audio(path)
    assert audio.channels == channels
    assert audio.notes == [f"down-mixed from {channels} channels to mono"]
    assert np.abs(audio.samples).max() == pytest.approx(0.6 / channels, abs=1e-3)


def test_gradio_stereo_int16_array_is_scaled_and_down_mixed():
    left = np.full(SAMPLE_RATE, 16384, dtype=np.int16)  # 0.5
    right = np.full(SAMPLE_RATE, 8192, dtype=np.int16)  # 0.25
    stereo = np.stack([left, right], axis=1)  # (samples, channels), as Gradio gives it
    samples = load_audio((SAMPLE_RATE, stereo))
    assert samples == pytest.approx(np.full(SAMPLE_RATE, 0.375))


def test_channels_first_arrays_are_read_as_channels():
    channels_first = np.stack([sine(), sine()])  # (2, samples), as librosa lays out stereo
    audio = read_audio((channels_first, SAMPLE_RATE))
    assert audio.channels == 2
    assert audio.samples == pytest.approx(sine(), abs=1e-6)


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        (np.full(SAMPLE_RATE, 16384, dtype=np.int16), 0.5),  # not 1.0, as dividing by the peak would give
        (np.full(SAMPLE_RATE, -32768, dtype=np.int16), -1.0),
        (np.full(SAMPLE_RATE, 2**30, dtype=np.int32), 0.5),
        (np.full(SAMPLE_RATE, 192, dtype=np.uint8), 0.5),  # 8-bit PCM is centred at 128
        (np.full(SAMPLE_RATE, 64, dtype=np.uint8), -0.5),
    ],
)
def test_integer_pcm_is_scaled_by_its_full_range(samples, expected):
    assert load_audio((SAMPLE_RATE, samples)) == pytest.approx(np.full(SAMPLE_RATE, expected))


def test_pairs_are_accepted_in_either_order():
    clip = sine(1.0, 22050)
    gradio = load_audio((22050, clip))
    qwen_asr = load_audio((clip, np.int64(22050)))
    assert np.array_equal(gradio, qwen_asr)
    assert np.array_equal(load_audio([22050, clip]), gradio)


def test_encoded_bytes_are_read(tmp_path):
    path = tmp_path / "clip.flac"
    sf.write(path, sine(), SAMPLE_RATE)
    assert np.array_equal(load_audio(path.read_bytes()), load_audio(path))


def test_float_samples_beyond_full_scale_are_divided_by_their_peak():
    int16_valued = sine(amplitude=16384.0)
    audio = read_audio((int16_valued, SAMPLE_RATE))
    assert np.abs(audio.samples).max() == pytest.approx(1.0)
    assert audio.notes == ["scaled down: float samples peaked at 16384, outside [-1, 1]"]


def test_short_clips_are_padded_with_trailing_silence():
    clip = sine(0.3)
    audio = read_audio((clip, SAMPLE_RATE))
    assert len(audio.samples) == round(MIN_SECONDS * SAMPLE_RATE)
    assert np.array_equal(audio.samples[: len(clip)], clip)
    assert not audio.samples[len(clip) :].any()
    assert audio.notes == ["padded with silence from 0.30 s to 0.5 s"]


def test_length_limit(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, sine(3.0), SAMPLE_RATE)
    with pytest.raises(AudioError, match=r"too long: 3\.0 s, the limit is 2 s"):
        load_audio(path, max_seconds=2)
    with pytest.raises(AudioError, match="too long"):
        load_audio((sine(3.0), SAMPLE_RATE), max_seconds=2.5)
    assert duration(load_audio(path, max_seconds=None)) == pytest.approx(3.0)
    assert duration(load_audio(path, max_seconds=3)) == pytest.approx(3.0)


def test_default_length_limit_comes_from_the_environment():
    def default_limit(env: dict[str, str]) -> str:
        command = [sys.executable, "-c", "from asr_pt.audio import MAX_SECONDS; print(MAX_SECONDS)"]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout.strip()

    env = {key: value for key, value in os.environ.items() if key != "ASR_PT_MAX_AUDIO_SECONDS"}
    assert default_limit(env) == "1200.0"
    assert default_limit({**env, "ASR_PT_MAX_AUDIO_SECONDS": "90"}) == "90.0"


def test_unreadable_files_are_explained(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "missing.wav")

    empty = tmp_path / "empty.wav"
    empty.touch()
    with pytest.raises(AudioError, match=r"empty\.wav is empty \(0 bytes\)"):
        load_audio(empty)

    text = tmp_path / "notes.wav"
    text.write_text("isto não é áudio\n")
    with pytest.raises(AudioError, match=r"notes\.wav is not readable audio: it is corrupt"):
        load_audio(text)

    truncated = tmp_path / "truncated.wav"
    sf.write(truncated, sine(), SAMPLE_RATE)
    truncated.write_bytes(truncated.read_bytes()[:30])
    with pytest.raises(AudioError, match="truncated.wav is not readable audio: it is corrupt"):
        load_audio(truncated)

    with pytest.raises(AudioError, match=r"audio data is empty \(0 bytes\)"):
        load_audio(b"")
    with pytest.raises(AudioError, match="audio data is not readable audio: it is corrupt"):
        load_audio(b"RIFF but not really")


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.array([], dtype=np.float32), "no samples"),
        (np.zeros((0, 2), dtype=np.int16), "no samples"),
        (np.where(np.arange(SAMPLE_RATE) == 5, np.nan, sine()), "NaN or infinite"),
        (np.where(np.arange(SAMPLE_RATE) == 5, np.inf, sine()), "NaN or infinite"),
        (np.zeros(SAMPLE_RATE, dtype=np.float32), "silent"),
        (np.zeros(SAMPLE_RATE, dtype=np.int16), "silent"),
        (sine(amplitude=1e-5), "silent"),
        (np.zeros((2, 2, SAMPLE_RATE), dtype=np.float32), r"\(samples, channels\), not shape \(2, 2, 16000\)"),
        (sine().astype(np.complex64), "unsupported sample type complex64"),
    ],
)
def test_unusable_samples_are_explained(samples, message):
    with pytest.raises(AudioError, match=message):
        load_audio((samples, SAMPLE_RATE))


@pytest.mark.parametrize("source", [sine(), [0.1, 0.2], 16000, (sine(), 16000.0), (sine(), sine()), None])
def test_unsupported_inputs_are_explained(source):
    with pytest.raises(AudioError, match="unsupported audio input"):
        load_audio(source)


def test_a_wav_holding_less_than_its_header_promises_is_refused_not_padded(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, sine(3.0), SAMPLE_RATE, subtype="PCM_16")  # 48,000 frames
    path.write_bytes(path.read_bytes()[: 44 + 16])  # the 44-byte header and 8 frames
    with pytest.raises(AudioError, match=r"cut\.wav is truncated: its header promises 96,000 bytes .* holds 16"):
        load_audio(path)
    whole = tmp_path / "whole.wav"
    sf.write(whole, sine(3.0), SAMPLE_RATE, subtype="PCM_16")
    streamed = bytearray(whole.read_bytes())  # a writer that cannot seek back leaves the sizes "unknown"
    streamed[4:8] = streamed[40:44] = b"\xff\xff\xff\xff"
    assert np.array_equal(load_audio(bytes(streamed)), load_audio(whole))


def test_an_mp3_cut_short_is_refused_as_truncated_and_a_corrupt_one_as_corrupt(tmp_path):
    whole = tmp_path / "whole.mp3"
    sf.write(whole, sine(2.0, 44100), 44100, format="MP3")
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(AudioError, match=r"cut\.mp3 is truncated: its header promises 2\.00 s"):
        load_audio(cut)
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(b"\xff\xfb" + np.random.default_rng(0).bytes(5000))  # an MPEG frame sync, then noise
    with pytest.raises(AudioError, match=r"corrupt\.mp3 is not readable audio: it is corrupt") as error:
        load_audio(corrupt)
    assert "does not exist" not in str(error.value)  # libsndfile's own words for it


def test_under_a_tenth_of_a_second_is_refused(tmp_path):
    with pytest.raises(AudioError, match=r"too short: 0\.050 s, and nothing can be said in under 0\.1 s"):
        load_audio((sine(0.05), SAMPLE_RATE))
    path = tmp_path / "blip.wav"
    sf.write(path, sine(0.09, 44100), 44100)
    with pytest.raises(AudioError, match="too short"):
        load_audio(path)
    assert duration(load_audio((sine(0.1), SAMPLE_RATE))) == MIN_SECONDS  # from 0.1 s on, padded


@pytest.mark.parametrize("sample_rate", [0, 1, 4, 999, 768_001, 2_000_000_000])
def test_sample_rates_no_recording_has_are_refused(tmp_path, sample_rate):
    message = rf"invalid sample rate: {sample_rate:,} Hz; recordings have 1,000 to 768,000 Hz"
    with pytest.raises(AudioError, match=message):
        load_audio((sample_rate, sine()))
    if sample_rate:  # a WAV header can say any rate, and libsndfile believes it
        path = tmp_path / "odd.wav"
        sf.write(path, sine(), sample_rate, subtype="PCM_16")
        with pytest.raises(AudioError, match=message):
            load_audio(path)


@pytest.mark.parametrize("sample_rate", [1_000, 768_000])
def test_the_extreme_rates_recordings_have_are_read(sample_rate):
    assert duration(load_audio((sine(0.5, sample_rate, frequency=100), sample_rate))) == pytest.approx(0.5)


def test_audio_errors_are_value_errors():
    assert issubclass(AudioError, ValueError)


def test_write_wav_saves_16_bit_16_khz_that_reads_back(tmp_path):
    path = tmp_path / "saved.wav"
    write_wav(path, sine())
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
    assert load_audio(path) == pytest.approx(sine(), abs=1 / 32768)


def test_content_hash_survives_a_wav_round_trip_and_tells_clips_apart(tmp_path):
    from asr_pt.audio import content_hash, write_wav

    rng = np.random.default_rng(0)
    samples = (rng.standard_normal(16000) * 0.2).clip(-1, 1).astype(np.float32)
    write_wav(tmp_path / "a.wav", samples)
    again = load_audio(tmp_path / "a.wav")
    assert content_hash(again) == content_hash(samples)
    write_wav(tmp_path / "b.wav", again)
    assert (tmp_path / "b.wav").read_bytes() == (tmp_path / "a.wav").read_bytes()
    assert content_hash(samples * 0.5) != content_hash(samples)


def constant_flac(path, sample_rate: int, channels: int, seconds: int) -> None:
    """A file that compresses to almost nothing and decodes to channels x rate x seconds samples: a decompression
    bomb for audio (8 channels at 655 kHz for 180 s is 1.0 MB of FLAC, 3.8 GB of float32)."""
    block = np.full((sample_rate, channels), 1000, dtype=np.int16)
    with sf.SoundFile(path, "w", sample_rate, channels, subtype="PCM_16", format="FLAC") as f:
        for _ in range(seconds):
            f.write(block)


def test_a_file_that_would_take_too_much_decoding_is_refused_from_its_header(tmp_path):
    bomb = tmp_path / "bomb.flac"
    constant_flac(bomb, 655_350, 8, 1)  # the bomb's shape; its length does not matter, the header is enough
    with pytest.raises(AudioError, match="8 channels at 655,350 Hz: 5,242,800 samples a second to decode"):
        load_audio(bomb, max_seconds=180)


def test_decoding_holds_little_more_than_the_16_khz_mono_result(tmp_path):
    """The most a file can make the server decode: 8 channels at 96 kHz for the page's 180 s (141 KB of FLAC, 553 MB
    of float32 decoded whole). The 16 kHz mono result is 11.5 MB; decoding may allocate 3x that plus 20 MB at its peak
    (numpy's allocations, as tracemalloc sees them, whether or not the pages are resident)."""
    path = tmp_path / "edge.flac"
    constant_flac(path, 96_000, 8, 180)
    measure = (
        "import sys, tracemalloc\n"
        "from asr_pt.audio import read_audio\n"
        "tracemalloc.start()\n"
        "audio = read_audio(sys.argv[1], max_seconds=180)\n"
        "print(audio.samples.nbytes, tracemalloc.get_traced_memory()[1])\n"
    )
    done = subprocess.run([sys.executable, "-c", measure, str(path)], capture_output=True, text=True, check=True)
    result_bytes, peak = map(int, done.stdout.split())
    assert result_bytes == 180 * SAMPLE_RATE * 4
    assert peak <= 3 * result_bytes + 20 * 2**20, f"decoding allocated {peak / 2**20:.0f} MB at its peak"
