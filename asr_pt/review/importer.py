"""Queueing a corpus for review: every clip transcribed by both models, in batches, with its reference and clip id.

Clips already in the store (same corpus name and clip id) are not transcribed again, so an interrupted import picks
up where it stopped. A clip that cannot be read is reported and left out; it does not stop the rest.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

from tqdm import tqdm

from asr_pt.audio import AudioError, load_audio
from asr_pt.corpora import Example, parse_spec, read_examples
from asr_pt.models import ASRModel
from asr_pt.review.items import NewItem
from asr_pt.review.store import ReviewStore


@dataclass
class ImportSummary:
    queued: int = 0
    already_queued: int = 0
    unreadable: list[str] = field(default_factory=list)  # "clip id: why"


def import_dataset(
    store: ReviewStore,
    spec: str,
    finetuned: ASRModel,
    base: ASRModel,
    *,
    limit: int | None = None,
    batch_size: int = 16,
    progress: bool = True,
) -> ImportSummary:
    """Transcribe the corpus SPEC names with both models and queue every clip in `store`."""
    corpus = parse_spec(spec)
    summary = ImportSummary()
    bar = tqdm(total=limit, unit="clip", desc=f"importing {corpus.name}", disable=not progress)
    for batch in _batches(read_examples(corpus, limit), batch_size):
        bar.update(len(batch))
        fresh = [e for e in batch if not store.has_item(e.corpus, e.id)]
        summary.already_queued += len(batch) - len(fresh)
        clips = []
        for example in fresh:
            try:
                clips.append((example, load_audio(example.audio)))
            except AudioError as error:
                summary.unreadable.append(f"{example.id}: {error}")
        if not clips:
            continue
        samples = [audio for _, audio in clips]
        finetuned_texts = finetuned.transcribe_batch(samples)
        base_texts = base.transcribe_batch(samples)
        items = []
        for (example, audio), hyp_finetuned, hyp_base in zip(clips, finetuned_texts, base_texts, strict=True):
            audio_hash, seconds = store.put_audio(audio)
            items.append(
                NewItem(
                    audio_hash=audio_hash,
                    duration=seconds,
                    source=example.corpus,
                    source_id=example.id,
                    source_split=example.split or "",
                    reference=example.text,
                    hypothesis_finetuned=hyp_finetuned.text,
                    hypothesis_base=hyp_base.text,
                    model_finetuned=finetuned.model_id,
                    model_base=base.model_id,
                )
            )
        store.add_items(items)
        summary.queued += len(items)
    bar.close()
    return summary


def _batches(examples: Iterator[Example], size: int) -> Iterator[list[Example]]:
    if size < 1:
        raise ValueError(f"batch size must be at least 1, not {size}")
    while batch := list(itertools.islice(examples, size)):
        yield batch
