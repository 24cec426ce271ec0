"""Word timings: a transcript aligned to its audio by Qwen3-ForcedAligner, loaded once, lazily and thread-safely.

The only loading path is `qwen_asr.Qwen3ForcedAligner.from_pretrained(id_or_dir)`: the real 0.6B aligner in
production, the tiny checkpoint of `asr_pt.tiny_aligner` in tests.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import numpy as np

from asr_pt.audio import SAMPLE_RATE, AudioSource, duration, load_audio
from asr_pt.models import LazyModel, ModelLoadError, check_fetchable, load_failure_message
from asr_pt.precision import load_dtype
from asr_pt.settings import DEFAULTS

ALIGNER_MODEL = DEFAULTS.aligner_model
MAX_TEXT_CHARS = 5000  # a 3-minute clip is about 500 words, 3,000 characters
# Languages whose words qwen-asr finds with their own tokenizers (nagisa, soynlp) rather than between spaces.
OWN_WORD_SPLITTERS = ("japanese", "korean")


@dataclass(frozen=True)
class WordTiming:
    word: str
    start: float  # seconds from the start of the clip
    end: float

    def to_dict(self) -> dict:
        return asdict(self)


class Aligner(LazyModel):
    """One Qwen3-ForcedAligner, loaded on first use and shared by every thread; it aligns one clip at a time."""

    def __init__(self, model_id: str = ALIGNER_MODEL, *, device: str | None = None, dtype=None):
        super().__init__(model_id, device, dtype)
        self._align_lock = threading.Lock()

    def _from_pretrained(self):
        from qwen_asr import Qwen3ForcedAligner

        try:
            check_fetchable(self.model_id)
            dtype = load_dtype(self.dtype)  # int8 is an ASRModel's: the aligner stays in bfloat16 then
            aligner = Qwen3ForcedAligner.from_pretrained(self.model_id, dtype=dtype, device_map=self.device)
            if not hasattr(aligner.model.config, "timestamp_token_id"):
                raise ValueError("its config has no timestamp_token_id: it is not a forced aligner")
        except Exception as error:  # transformers raises OSError, ValueError, HFValidationError... for one cause
            message = load_failure_message(self.model_id, error, "Qwen3-ForcedAligner", "tiny-aligner")
            raise ModelLoadError(message) from error
        aligner.model.eval()
        return aligner

    def languages(self) -> list[str]:
        """The languages this aligner covers, in qwen-asr's spelling."""
        from qwen_asr.inference.utils import SUPPORTED_LANGUAGES

        covered = self.load().model.config.support_languages or SUPPORTED_LANGUAGES
        return [str(language) for language in covered]

    def align(self, audio: AudioSource, text: str, language: str, max_seconds: float | None = None) -> list[WordTiming]:
        """Each word of `text` with the seconds it starts and ends at in `audio` (file, bytes, or samples and rate).

        Words keep their punctuation; times are clipped to the clip. Raises AudioError (the clip is unreadable or
        longer than `max_seconds` or qwen-asr's 180 s) or ValueError for bad input, ModelLoadError when the aligner
        cannot load.
        """
        from qwen_asr.inference.utils import MAX_FORCE_ALIGN_INPUT_SECONDS

        text = check_text(text)
        samples = load_audio(audio, max_seconds=min(max_seconds or np.inf, MAX_FORCE_ALIGN_INPUT_SECONDS))
        language = self.check_language(language)
        aligner = self.load()
        with self._align_lock:
            [result] = aligner.align(audio=(samples, SAMPLE_RATE), text=text, language=language)
        pieces = [(item.text, item.start_time, item.end_time) for item in result]
        if language.lower() not in OWN_WORD_SPLITTERS:
            pieces = words_with_punctuation(text, pieces, aligner.aligner_processor.tokenize_space_lang)
        return [clipped(word, start, end, duration(samples)) for word, start, end in pieces]

    def check_language(self, language: str) -> str:
        """The language in qwen-asr's spelling, or a ValueError that lists the ones this aligner covers."""
        covered = {name.lower(): name for name in self.languages()}
        name = str(language or "").strip()
        if name.lower() not in covered:
            raise ValueError(
                f"word timings need the transcript's language, one of {sorted(covered.values())}, not {name!r}"
            )
        return covered[name.lower()]


def check_text(text: str) -> str:
    """The transcript to align, stripped; a ValueError when there is none or it is too long."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("no text to time: give the transcript of the clip")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"the text is too long to time: {len(text):,} characters, the limit is {MAX_TEXT_CHARS:,}")
    return text.strip()


def words_with_punctuation(text: str, pieces: list[tuple[str, float, float]], split) -> list[tuple[str, float, float]]:
    """The aligner times the letters and digits of each space-separated word (`split` is how qwen-asr finds them);
    this gives the times back to the words as written, punctuation included. A word that `split` cuts into several
    pieces (Chinese characters inside it) keeps its pieces."""
    timed = iter(pieces)
    words: list[tuple[str, float, float]] = []
    leading = ""  # punctuation before the first word
    for token in text.split():
        own = [next(timed) for _ in split(token)]
        if not own:  # a dash or quote standing alone goes with the word before it
            if words:
                word, start, end = words[-1]
                words[-1] = (f"{word} {token}", start, end)
            else:
                leading += f"{token} "
        elif len(own) == 1:
            words.append((leading + token, own[0][1], own[0][2]))
            leading = ""
        else:
            words.extend(own)
    return words


def clipped(word: str, start: float, end: float, seconds: float) -> WordTiming:
    """Times inside the clip and in order: the aligner can place a word past the end (or, untrained, anywhere)."""
    start = float(np.clip(start, 0.0, seconds))
    return WordTiming(word, round(start, 3), round(float(np.clip(end, start, seconds)), 3))
