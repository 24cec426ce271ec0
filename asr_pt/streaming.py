"""Live transcription as the visitor speaks: qwen-asr's streaming algorithm, on the transformers backend.

qwen-asr streams only on vLLM (`Qwen3ASRModel.streaming_transcribe`). The algorithm is the same here: every
`chunk_seconds` of new audio, all the audio heard so far is transcribed again, with the text already decoded as the
start of the answer, less its last `unfixed_tokens` tokens (the words most likely to change as more audio arrives);
the first `unfixed_chunks` chunks get no such prefix. qwen-asr's state, prompt and output parsing are used as they
are; only the generate call is the transformers one (`ASRModel.generate_from_prompt`, under the model's lock).

A `LiveStream` holds no model: it is the stream's state as plain data (qwen-asr's `ASRStreamingState`: the audio so
far, the text, the counters), kept where the visitor's session lives. Each re-transcription is one call of a `step`
function given that state, `transcribe_step` bound to a model, which the page may run elsewhere (in a ZeroGPU
worker: the state pickles, and only the decoded text comes back).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soxr

from asr_pt.audio import MIN_SECONDS, SAMPLE_RATE, Audio, AudioError, pcm_to_float
from asr_pt.models import AUTO_LANGUAGE, DEFAULT_LANGUAGE, ASRModel
from asr_pt.settings import DEFAULTS

MAX_STREAM_SECONDS = DEFAULTS.stream_max_seconds
CHUNK_SECONDS = 2.0  # qwen-asr's defaults
UNFIXED_CHUNKS = 2
UNFIXED_TOKENS = 5
# What one piece from a microphone may be: browsers record at 8-96 kHz and send a piece every half second.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192000
MAX_PIECE_SECONDS = 5.0
MAX_CHANNELS = 8


@dataclass(frozen=True)
class Step:
    """One re-transcription: how much audio it covered and how long it took."""

    heard_seconds: float
    seconds: float


@dataclass(frozen=True)
class Update:
    """What one re-transcription wrote: qwen-asr's raw output (prefix included), whether it ended on its own (not at
    the token or time limit), and its seconds."""

    raw_decoded: str
    ended: bool
    seconds: float


def transcribe_step(model: ASRModel, state) -> Update:
    """All the audio in `state` (qwen-asr's `ASRStreamingState`) transcribed again, continuing the text decoded so
    far less its last tokens once the first `unfixed_chunk_num` chunks are past."""
    prefix = ""
    if state.chunk_id >= state.unfixed_chunk_num:
        prefix = fixed_prefix(model.load().processor.tokenizer, state._raw_decoded, state.unfixed_token_num)
    start = time.perf_counter()
    generated, ended = model.generate_from_prompt(state.prompt_raw + prefix, state.audio_accum)
    return Update(prefix + generated, ended, time.perf_counter() - start)


def fixed_prefix(tokenizer, raw_decoded: str, unfixed_tokens: int) -> str:
    """The text decoded so far less its last tokens, backing off further while that cuts a character in two."""
    ids = tokenizer.encode(raw_decoded)
    keep = len(ids) - unfixed_tokens
    while keep > 0:
        prefix = tokenizer.decode(ids[:keep])
        if "\ufffd" not in prefix:
            return prefix
        keep -= 1
    return ""


StepFunction = Callable[[object], Update]  # `transcribe_step` with its model bound


class LiveStream:
    """One visitor's live transcript. Feed it the microphone's pieces as they come, with the step function that
    transcribes; read `text`. The model (`model`, for its prompt) is not kept.

    Holds at most `max_seconds` of audio; the piece that reaches the limit is cut there, the stream transcribes what
    it holds a last time and ends, with `finished` saying why.
    """

    def __init__(
        self,
        model: ASRModel,
        *,
        language: str | None = DEFAULT_LANGUAGE,
        context: str = "",
        max_seconds: float = MAX_STREAM_SECONDS,
        chunk_seconds: float = CHUNK_SECONDS,
        unfixed_chunks: int = UNFIXED_CHUNKS,
        unfixed_tokens: int = UNFIXED_TOKENS,
    ):
        from qwen_asr.inference.qwen3_asr import ASRStreamingState
        from qwen_asr.inference.utils import normalize_language_name, validate_language

        if chunk_seconds <= 0 or max_seconds <= 0:
            raise ValueError("chunk_seconds and max_seconds must be positive")
        forced = None
        if language not in (None, "", AUTO_LANGUAGE):
            forced = normalize_language_name(language)
            validate_language(forced)
        qwen = model.load()
        self.max_seconds = max_seconds
        self.state = ASRStreamingState(
            unfixed_chunk_num=unfixed_chunks,
            unfixed_token_num=unfixed_tokens,
            chunk_size_sec=chunk_seconds,
            chunk_size_samples=max(1, round(chunk_seconds * SAMPLE_RATE)),
            chunk_id=0,
            buffer=np.zeros(0, dtype=np.float32),
            audio_accum=np.zeros(0, dtype=np.float32),
            prompt_raw=qwen._build_text_prompt(context=context or "", force_language=forced),
            context=context or "",
            force_language=forced,
            language="",
            text="",
            _raw_decoded="",
        )
        self._sample_rate: int | None = None
        self._channels = 1
        self._resampler: soxr.ResampleStream | None = None
        self.steps: list[Step] = []
        self.truncated = False  # some step hit max_new_tokens
        self.finished: str | None = None

    @property
    def text(self) -> str:
        return self.state.text

    @property
    def heard_seconds(self) -> float:
        return (len(self.state.audio_accum) + len(self.state.buffer)) / SAMPLE_RATE

    @property
    def audio(self) -> np.ndarray:
        """Everything heard so far, 16 kHz mono."""
        return np.concatenate([self.state.audio_accum, self.state.buffer])

    def recording(self) -> Audio:
        """Everything heard so far as a clip read for the models, saying what was done to the microphone's audio."""
        rate = self._sample_rate or SAMPLE_RATE
        notes = [f"resampled from {rate} Hz to {SAMPLE_RATE} Hz"] if rate != SAMPLE_RATE else []
        if self._channels > 1:
            notes.append(f"down-mixed from {self._channels} channels to mono")
        return Audio(self.audio, rate, self._channels, notes)

    def feed(self, sample_rate: int, samples: np.ndarray, step: StepFunction) -> bool:
        """Add one piece from the microphone (Gradio's rate and int16 or float samples, mono or (samples,
        channels)); transcribe again (`step`) for every full chunk. Returns whether the text was updated.

        Raises AudioError for a piece no microphone sends (odd rate, shape or length, a change of rate).
        """
        if self.finished:
            return False
        piece = self._to_16k(sample_rate, samples)
        room = round(self.max_seconds * SAMPLE_RATE) - len(self.state.audio_accum) - len(self.state.buffer)
        at_limit = len(piece) >= room
        self.state.buffer = np.concatenate([self.state.buffer, piece[:room]])
        updated = False
        while len(self.state.buffer) >= self.state.chunk_size_samples:
            size = self.state.chunk_size_samples
            chunk, self.state.buffer = self.state.buffer[:size], self.state.buffer[size:]
            self.state.audio_accum = np.concatenate([self.state.audio_accum, chunk])
            self._step(step)
            updated = True
        if at_limit:
            reason = f"stopped at {self.max_seconds:g} s, the longest a live stream may run"
            updated = self.finish(reason, step) or updated
        return updated

    def finish(self, reason: str = "the recording stopped", step: StepFunction | None = None) -> bool:
        """End the stream; given `step`, first transcribe the audio not yet in a full chunk, as qwen-asr's
        `finish_streaming_transcribe` does. Returns whether the text was updated."""
        if self.finished:
            return False
        self.finished = reason
        if step is None:
            return False
        tail, self.state.buffer = self.state.buffer, np.zeros(0, dtype=np.float32)
        if self._resampler is not None:  # the resampler holds back a few milliseconds until told the audio ended
            tail = np.concatenate([tail, self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)])
        limit = round(self.max_seconds * SAMPLE_RATE)
        self.state.audio_accum = np.concatenate([self.state.audio_accum, tail])[:limit]
        if not len(tail) or len(self.state.audio_accum) < MIN_SECONDS * SAMPLE_RATE:  # qwen-asr fails on less
            return False
        self._step(step)
        return True

    def release(self) -> None:
        """End the stream and let go of its audio at once (the visitor left)."""
        self.finished = self.finished or "the page was closed"
        self.state.audio_accum = self.state.buffer = np.zeros(0, dtype=np.float32)
        self._resampler = None

    def _step(self, step: StepFunction) -> None:
        from qwen_asr.inference.utils import parse_asr_output

        state = self.state
        update = step(state)
        self.steps.append(Step(len(state.audio_accum) / SAMPLE_RATE, update.seconds))
        self.truncated = self.truncated or not update.ended
        state._raw_decoded = update.raw_decoded
        state.language, state.text = parse_asr_output(state._raw_decoded, user_language=state.force_language)
        state.chunk_id += 1

    def _to_16k(self, sample_rate: int, samples: np.ndarray) -> np.ndarray:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
            raise AudioError(f"the sample rate must be an integer, not {type(sample_rate).__name__}")
        if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
            raise AudioError(f"unsupported sample rate {sample_rate} Hz: a microphone records at 8-192 kHz")
        if self._sample_rate not in (None, sample_rate):
            raise AudioError(f"the sample rate changed from {self._sample_rate} to {sample_rate} Hz mid-stream")
        samples = np.asarray(samples)
        if samples.ndim not in (1, 2) or (samples.ndim == 2 and not 0 < samples.shape[1] <= MAX_CHANNELS):
            raise AudioError(f"a microphone piece must be (samples,) or (samples, channels), not {samples.shape}")
        if len(samples) > MAX_PIECE_SECONDS * sample_rate:
            raise AudioError(f"a microphone piece may hold at most {MAX_PIECE_SECONDS:g} s of audio")
        samples = pcm_to_float(samples)
        if not np.isfinite(samples).all():
            raise AudioError("the audio contains NaN or infinite samples")
        if samples.ndim == 2:
            self._channels = max(self._channels, samples.shape[1])
            samples = samples.mean(axis=1)
        samples = np.clip(samples, -1.0, 1.0).astype(np.float32)
        if self._sample_rate is None:
            self._sample_rate = int(sample_rate)
            if sample_rate != SAMPLE_RATE:
                self._resampler = soxr.ResampleStream(sample_rate, SAMPLE_RATE, 1, dtype="float32")
        return samples if self._resampler is None else self._resampler.resample_chunk(samples)
