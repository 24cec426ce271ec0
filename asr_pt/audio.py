"""Turning the audio people and datasets give us into what Qwen3-ASR expects: 16 kHz mono float32 in [-1, 1]."""

import hashlib
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from asr_pt.settings import from_environment

SAMPLE_RATE = 16000
MIN_SECONDS = 0.5  # qwen-asr fails on shorter clips, so they are padded
MIN_SPEECH_SECONDS = 0.1  # shorter than a syllable: nothing can be said in it, so it is refused rather than padded
# Every real recording lies between these: telephony's 8 kHz and the lowest rates old samplers used sit well above the
# floor, and 768 kHz is the highest rate audio converters offer. Outside them a header is wrong (1 Hz, 2x10^9 Hz), and
# resampling would stretch or squash the samples into minutes or microseconds of nonsense.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 768_000
# What a file may make the server decode each second of its audio, all channels together: 768 kHz mono, stereo at
# 384 kHz, 7.1 at 96 kHz. Beyond it a small file (one constant sample compresses to almost nothing) costs minutes of
# CPU to decode, whatever its length.
MAX_DECODED_SAMPLES_PER_SECOND = MAX_SAMPLE_RATE
DECODE_BLOCK_FRAMES = 1 << 16  # a file is decoded, down-mixed and resampled this many frames at a time
# An MP3's length comes from its Xing header or an estimate; decoders may fall a few milliseconds short of it.
DECODE_SLACK_SECONDS = 0.1
MAX_SECONDS = from_environment().max_audio_seconds  # eval, train and import; the page passes its own limit
# The most bytes a second of audio takes as recorders commonly write it: 48 kHz stereo 32-bit WAV.
MAX_BYTES_PER_SECOND = 48000 * 2 * 4
SILENCE_PEAK = 1e-4  # below this there is nothing to transcribe

AudioSource = str | Path | bytes | tuple[int, np.ndarray] | tuple[np.ndarray, int]


class AudioError(ValueError):
    """Audio that cannot be transcribed; the message is written for the person who supplied it."""


@dataclass(frozen=True, eq=False)
class Audio:
    """Samples ready for the model, with what was done to get them, so a demo can tell the user."""

    samples: np.ndarray
    original_sample_rate: int
    channels: int
    notes: list[str]


def load_audio(source: AudioSource, *, max_seconds: float | None = MAX_SECONDS) -> np.ndarray:
    """16 kHz mono float32 samples in [-1, 1]; see `read_audio`."""
    return read_audio(source, max_seconds=max_seconds).samples


def read_audio(source: AudioSource, *, max_seconds: float | None = MAX_SECONDS) -> Audio:
    """Reads a file path, encoded bytes (WAV, FLAC, OGG or MP3) or a samples/rate pair in either order.

    Gradio gives `(sample_rate, samples)` and qwen-asr takes `(samples, sample_rate)`; the integer is the rate.
    Integer samples are scaled by their type's full range (int16 by 32768), not by their peak, so quiet speech stays
    quiet. Float samples beyond [-1, 1] cannot be told from a mis-scaled int array, so they are divided by their peak.
    Clips shorter than MIN_SECONDS are padded with silence. Raises AudioError for anything that cannot be used: a
    corrupt or truncated file, a sample rate no recording has, audio shorter than MIN_SPEECH_SECONDS or longer than
    `max_seconds` (None for no limit).
    """
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"audio file not found: {path}")
        if path.stat().st_size == 0:
            raise AudioError(f"audio file {path.name} is empty (0 bytes)")
        return _read_encoded(path, path.name, max_seconds)
    if isinstance(source, bytes):
        if not source:
            raise AudioError("the audio data is empty (0 bytes)")
        return _read_encoded(io.BytesIO(source), "the audio data", max_seconds)
    if isinstance(source, tuple | list) and len(source) == 2:
        first, second = source
        if _is_sample_rate(first) and isinstance(second, np.ndarray):
            return _conform(second, int(first), max_seconds)
        if isinstance(first, np.ndarray) and _is_sample_rate(second):
            return _conform(first, int(second), max_seconds)
    raise AudioError(
        f"unsupported audio input ({type(source).__name__}): expected a file path, bytes, "
        "or a pair of a numpy array and an integer sample rate"
    )


def declared_seconds(path: str | Path) -> float | None:
    """The length a file's header declares, read without decoding; None when the header cannot be read (decoding
    then says why)."""
    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError, OSError):
        return None
    return info.frames / info.samplerate if info.samplerate > 0 else None


def duration(samples: np.ndarray) -> float:
    """Seconds of 16 kHz samples."""
    return len(samples) / SAMPLE_RATE


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """int16 samples scaled by 32768, the inverse of how soundfile reads them, so a round trip is exact."""
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)


def write_wav(path: str | Path, samples: np.ndarray) -> None:
    """Saves 16 kHz samples as 16-bit PCM WAV, which every tool reads and which is half the size of float."""
    sf.write(path, to_pcm16(samples), SAMPLE_RATE, subtype="PCM_16")


def content_hash(samples: np.ndarray) -> str:
    """The same clip gives the same hash whichever file or format it came from, once decoded to 16 kHz."""
    return hashlib.sha256(to_pcm16(samples).tobytes()).hexdigest()


def _is_sample_rate(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _read_encoded(file: Path | io.BytesIO, name: str, max_seconds: float | None) -> Audio:
    """Decodes a block at a time into the 16 kHz mono result, so the server never holds the file's own channels and
    rate: what it takes is checked from the header first (length, rate, samples per second to decode)."""
    try:
        with sf.SoundFile(file) as sound:
            _check_header(sound, name)
            _check_sample_rate(sound.samplerate)
            _check_decoding(sound.channels, sound.samplerate)
            _check_length(sound.frames, sound.samplerate, max_seconds)  # before decoding hours of audio
            mono = _Mono(sound.samplerate, sound.channels, sound.frames)
            while len(block := sound.read(DECODE_BLOCK_FRAMES, dtype="float32", always_2d=True)):
                mono.add(block)  # soundfile reads no further than the header's frames
            if sound.frames - mono.frames > DECODE_SLACK_SECONDS * sound.samplerate:  # an MP3 cut short
                raise AudioError(
                    f"{name} is truncated: its header promises {sound.frames / sound.samplerate:.2f} s of audio, "
                    f"only {mono.frames / sound.samplerate:.2f} s could be decoded"
                )
            return mono.finish()
    except sf.SoundFileError as error:
        reason = getattr(error, "error_string", "") or ""
        if "does not exist" in reason:  # libsndfile's words for an MP3 it cannot decode: the file is there
            reason = ""
        raise AudioError(
            f"{name} is not readable audio: it is corrupt, or not WAV, FLAC, OGG or MP3"
            + (f" ({reason.strip().rstrip('.')})" if reason.strip() else "")
        ) from error


# libsndfile reads what a cut-off WAV holds without a word; its log keeps what the header promised.
_SHORT_DATA_CHUNK = re.compile(r"^data\s*:\s*(\d+) \(should be (\d+)\)", re.MULTILINE)
_UNKNOWN_SIZE = 0xFFFFFFFF  # what a writer that cannot seek back (a pipe, a stream) puts in the header


def _check_header(sound: sf.SoundFile, name: str) -> None:
    """Refuse a WAV that holds fewer bytes of audio than its header says: an interrupted upload or copy."""
    found = _SHORT_DATA_CHUNK.search(sound.extra_info)
    if found and int(found[2]) < int(found[1]) < _UNKNOWN_SIZE:
        promised, held = int(found[1]), int(found[2])
        raise AudioError(
            f"{name} is truncated: its header promises {promised:,} bytes of audio, the file holds {held:,} "
            "(was the upload or copy interrupted?)"
        )


def _check_sample_rate(sample_rate: int) -> None:
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"invalid sample rate: {sample_rate:,} Hz; recordings have {MIN_SAMPLE_RATE:,} to {MAX_SAMPLE_RATE:,} Hz"
        )


def _check_decoding(channels: int, sample_rate: int) -> None:
    if channels * sample_rate > MAX_DECODED_SAMPLES_PER_SECOND:
        raise AudioError(
            f"the audio has {channels} channels at {sample_rate:,} Hz: {channels * sample_rate:,} samples a second "
            f"to decode, and at most {MAX_DECODED_SAMPLES_PER_SECOND:,} are taken (stereo at "
            f"{MAX_DECODED_SAMPLES_PER_SECOND // 2:,} Hz, 8 channels at {MAX_DECODED_SAMPLES_PER_SECOND // 8:,} Hz)"
        )


def _check_length(frames: int, sample_rate: int, max_seconds: float | None) -> None:
    if max_seconds is not None and frames / sample_rate > max_seconds:
        raise AudioError(f"the audio is too long: {frames / sample_rate:.1f} s, the limit is {max_seconds:g} s")
    if 0 < frames / sample_rate < MIN_SPEECH_SECONDS:  # no frames at all is told as such once decoded
        raise AudioError(
            f"the audio is too short: {frames / sample_rate:.3f} s, and nothing can be said in under "
            f"{MIN_SPEECH_SECONDS:g} s"
        )


def _conform(samples: np.ndarray, sample_rate: int, max_seconds: float | None) -> Audio:
    _check_sample_rate(sample_rate)
    if samples.ndim not in (1, 2):
        raise AudioError(f"audio samples must be (samples,) or (samples, channels), not shape {samples.shape}")
    if samples.size == 0:
        raise AudioError("the audio contains no samples")
    if samples.ndim == 2 and samples.shape[0] < samples.shape[1]:
        samples = samples.T  # (channels, samples), as librosa lays it out: audio has more samples than channels
    samples = samples.reshape(len(samples), -1)
    _check_length(len(samples), sample_rate, max_seconds)
    mono = _Mono(sample_rate, samples.shape[1], len(samples))
    mono.add(pcm_to_float(samples))
    return mono.finish()


class _Mono:
    """16 kHz mono float32 made from (frames, channels) blocks as they come: each is down-mixed and resampled
    (soxr's streaming resampler, the filter `librosa.resample` uses) into one buffer sized from the frames
    announced, so the peak memory is the result plus a block, whatever the source's channels and rate."""

    def __init__(self, sample_rate: int, channels: int, frames: int):
        self.sample_rate, self.channels, self.frames = sample_rate, channels, 0
        self.length = math.ceil(frames * SAMPLE_RATE / sample_rate)  # what librosa.resample(fix=True) gives
        self.out = np.zeros(self.length + 64, dtype=np.float32)  # the resampler may give a few samples more
        self.written, self.peak = 0, 0.0
        self.stream = None
        if sample_rate != SAMPLE_RATE:
            self.stream = soxr.ResampleStream(sample_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")

    def add(self, block: np.ndarray, last: bool = False) -> None:
        mixed = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0].astype(np.float32)
        if not np.isfinite(mixed).all():
            raise AudioError("the audio contains NaN or infinite samples")
        self.frames += len(block)
        if len(mixed):
            self.peak = max(self.peak, float(np.abs(mixed).max()))
        if self.stream is not None:
            mixed = self.stream.resample_chunk(mixed, last=last)
        room = min(len(mixed), len(self.out) - self.written)
        self.out[self.written : self.written + room] = mixed[:room]
        self.written += room

    def finish(self) -> Audio:
        if self.stream is not None:
            self.add(np.zeros((0, 1), dtype=np.float32), last=True)
        if self.frames == 0:
            raise AudioError("the audio contains no samples")
        if self.peak < SILENCE_PEAK:
            raise AudioError("the audio is silent: it has no signal to transcribe")
        notes = [f"down-mixed from {self.channels} channels to mono"] if self.channels > 1 else []
        length = math.ceil(self.frames * SAMPLE_RATE / self.sample_rate)
        samples = self.out[:length]  # a file that decoded short of its header was refused before this
        if self.peak > 1:
            samples /= self.peak
            notes.append(f"scaled down: float samples peaked at {self.peak:g}, outside [-1, 1]")
        if self.sample_rate != SAMPLE_RATE:
            notes.append(f"resampled from {self.sample_rate} Hz to {SAMPLE_RATE} Hz")
        np.clip(samples, -1.0, 1.0, out=samples)  # resampling can overshoot full scale slightly
        min_samples = round(MIN_SECONDS * SAMPLE_RATE)
        if len(samples) < min_samples:
            notes.append(f"padded with silence from {duration(samples):.2f} s to {MIN_SECONDS:g} s")
            samples = np.pad(samples, (0, min_samples - len(samples)))
        return Audio(samples, self.sample_rate, self.channels, notes)


def pcm_to_float(samples: np.ndarray) -> np.ndarray:
    """Integer PCM scaled by its type's full range, so int16 16384 becomes 0.5 whatever the clip's peak."""
    if np.issubdtype(samples.dtype, np.signedinteger):
        return samples.astype(np.float32) / -float(np.iinfo(samples.dtype).min)
    if np.issubdtype(samples.dtype, np.unsignedinteger):
        middle = (float(np.iinfo(samples.dtype).max) + 1) / 2
        return (samples.astype(np.float32) - middle) / middle
    if np.issubdtype(samples.dtype, np.floating):
        return samples.astype(np.float32, copy=False)
    raise AudioError(f"unsupported sample type {samples.dtype}: expected integer PCM or floating point")
