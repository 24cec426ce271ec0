"""Many files through both models at once: batches of clips, one `generate` per model per batch, and one row per
file with both transcripts and the WER between them. A file that cannot be read gets its error in its row; the
others still finish. What the demo's "many files" section shows and its `/transcribe_many` endpoint returns."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr_pt.audio import AudioError, declared_seconds, duration, read_audio
from asr_pt.compare import BASE, FINETUNED, check_language
from asr_pt.metrics import score_pair
from asr_pt.models import ASRModel, ModelLoadError
from asr_pt.settings import DEFAULTS
from asr_pt.uploads import MAX_TOTAL_SECONDS, Upload

BATCH_SIZE = DEFAULTS.batch_size
SIDES = (FINETUNED, BASE)


@dataclass(frozen=True)
class FileResult:
    """One file's row. The WERs score the base against the fine-tuned text (their disagreement), in percent."""

    file: str
    audio_seconds: float | None
    finetuned: str | None
    base: str | None
    wer: float | None  # the model card's protocol (written form)
    wer_normalized: float | None
    truncated: list[str]  # the sides whose text was cut at max_new_tokens
    error: str | None  # why the file, or one model's side of it, has no transcript

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def transcribe_many(
    uploads: Sequence[Upload],
    finetuned: ASRModel,
    base: ASRModel,
    *,
    language: str = "Portuguese",
    batch_size: int = BATCH_SIZE,
    max_seconds: float | None = None,
    max_total_seconds: float = MAX_TOTAL_SECONDS,
    progress: Callable[[int, int], None] | None = None,
    keep: Callable[[int, np.ndarray], None] | None = None,
) -> list[FileResult]:
    """One row per upload, in order. Files are read a batch at a time (never all in memory); a file longer than
    `max_seconds`, or past `max_total_seconds` of audio in all, is left out with its error, judged from the headers
    before any file is decoded; a file listed twice is read and counted once. `keep(index, samples)` is handed each
    clip decoded, `progress(done, total)` is called after each batch. Raises ValueError for an unknown language,
    ModelLoadError when neither model loads."""
    language = check_language(language)
    rows: dict[int, FileResult] = {}
    first_of = _first_listings(uploads)
    left_out = _over_total(uploads, first_of, max_seconds, max_total_seconds)
    pending: list[tuple[int, str, np.ndarray]] = []
    total_seconds = 0.0
    unavailable: dict[str, str] = {}
    for index, upload in enumerate(uploads):
        if first_of[index] == index:
            try:
                if index in left_out:
                    raise AudioError(left_out[index])
                samples = _read(upload, max_seconds)
                seconds = duration(samples)
                if total_seconds + seconds > max_total_seconds:  # a header that said less than the file held
                    raise AudioError(_left_out_message(max_total_seconds))
            except AudioError as error:
                rows[index] = FileResult(upload.name, None, None, None, None, None, [], str(error))
            else:
                total_seconds += seconds
                pending.append((index, upload.name, samples))
                if keep is not None:
                    keep(index, samples)
        if len(pending) == batch_size or (index == len(uploads) - 1 and pending):
            rows |= _transcribe_batch(pending, {FINETUNED: finetuned, BASE: base}, language, unavailable)
            pending = []
            if progress is not None:
                progress(index + 1, len(uploads))
    if len(unavailable) == len(SIDES) and uploads:
        raise ModelLoadError(" ".join(unavailable.values()))
    return [dataclasses.replace(rows[first_of[index]], file=upload.name) for index, upload in enumerate(uploads)]


def _first_listings(uploads: Sequence[Upload]) -> list[int]:
    """Per upload, the index of the first listing of the same file (its own index when it is the first)."""
    seen: dict[Path, int] = {}
    return [seen.setdefault(u.path.resolve(), i) if u.path is not None else i for i, u in enumerate(uploads)]


def _over_total(
    uploads: Sequence[Upload], first_of: list[int], max_seconds: float | None, max_total_seconds: float
) -> dict[int, str]:
    """The files left out, by index, from what their headers declare: past the batch's total, in order. A file too
    long by itself is refused when read, and counts for nothing here."""
    total, left_out = 0.0, {}
    for index, upload in enumerate(uploads):
        if first_of[index] != index or upload.path is None:
            continue
        seconds = declared_seconds(upload.path)
        if seconds is None or (max_seconds is not None and seconds > max_seconds):
            continue
        if total + seconds > max_total_seconds:
            left_out[index] = _left_out_message(max_total_seconds)
        else:
            total += seconds
    return left_out


def _left_out_message(max_total_seconds: float) -> str:
    return f"left out: the files of one batch may hold at most {max_total_seconds:g} s of audio"


def _read(upload: Upload, max_seconds: float | None) -> np.ndarray:
    if upload.path is None:
        raise AudioError(upload.error or "the file could not be taken")
    return read_audio(upload.path, max_seconds=max_seconds).samples


def _transcribe_batch(
    clips: list[tuple[int, str, np.ndarray]], models: dict[str, ASRModel], language: str, unavailable: dict[str, str]
) -> dict[int, FileResult]:
    """Both models on one batch of clips; a model that cannot load leaves its side empty and says why."""
    texts: dict[str, list[str | None]] = {}
    truncated: dict[str, list[bool]] = {}
    for side, model in models.items():
        try:
            transcripts = model.transcribe_batch([samples for _, _, samples in clips], language=language)
        except ModelLoadError as error:
            unavailable[side] = str(error)
            transcripts = []
        texts[side] = [t.text for t in transcripts] or [None] * len(clips)
        truncated[side] = [t.truncated for t in transcripts] or [False] * len(clips)
    rows = {}
    for row, (index, name, samples) in enumerate(clips):
        finetuned_text, base_text = texts[FINETUNED][row], texts[BASE][row]
        both = finetuned_text is not None and base_text is not None
        rows[index] = FileResult(
            file=name,
            audio_seconds=round(duration(samples), 3),
            finetuned=finetuned_text,
            base=base_text,
            wer=score_pair(finetuned_text, base_text, "written").wer if both else None,
            wer_normalized=score_pair(finetuned_text, base_text, "normalized").wer if both else None,
            truncated=[side for side in SIDES if truncated[side][row]],
            error=" ".join(unavailable.values()) or None,
        )
    return rows
