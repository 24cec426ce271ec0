"""Queueing a corpus for review: every clip transcribed by both models, in batches, with its reference and clip id.

Clips already in the store (same corpus name and clip id) are not transcribed again, so an interrupted import picks
up where it stopped. A clip that cannot be read is reported and left out; it does not stop the rest.
Under torchrun (`asr_pt.shards`) each process transcribes its share of the clips into a shard file of the store's
folder, and the main process queues them all in the corpus's order, as one process would have.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from asr_pt.audio import AudioError, load_audio
from asr_pt.corpora import Example, parse_spec, read_examples
from asr_pt.models import ASRModel
from asr_pt.review.items import NewItem
from asr_pt.review.store import ReviewStore
from asr_pt.shards import SINGLE, Shard, append_rows, complete_lines, shard_files

SHARD_FILE = "import.jsonl"  # in the store's folder: import.rank1-of-4.jsonl... while processes transcribe


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
    shard: Shard = SINGLE,
) -> ImportSummary:
    """Transcribe the corpus SPEC names with both models and queue every clip in `store`; under several processes,
    `shard` says which clips are this process's, and the summary (of all) is the main process's."""
    corpus = parse_spec(spec)
    log = store.data_dir / SHARD_FILE
    if shard.main:  # what a killed run's processes transcribed is queued first, before anyone looks at the store
        _queue_shards(store, log, [])
    shard.wait()
    summary = ImportSummary()
    order: list[tuple[str, str]] = []  # every clip's (corpus, id), in the corpus's order

    def mine() -> Iterator[Example]:
        for index, example in enumerate(read_examples(corpus, limit)):
            order.append((example.corpus, example.id))
            if shard.owns(index):
                yield example

    bar = tqdm(total=limit, unit="clip", desc=f"importing {corpus.name}", disable=not progress or not shard.main)
    for batch in _batches(mine(), batch_size):
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
        if shard.count == 1:
            store.add_items(items)
        else:
            append_rows(shard.file(log), (dataclasses.asdict(item) for item in items))
        summary.queued += len(items)
    bar.close()
    summaries = shard.gather(summary)
    if not shard.main:
        return summary
    _queue_shards(store, log, order)
    position = {clip_id: index for index, (_, clip_id) in enumerate(order)}
    return ImportSummary(
        queued=sum(s.queued for s in summaries),
        already_queued=sum(s.already_queued for s in summaries),
        unreadable=sorted(
            (problem for s in summaries for problem in s.unreadable),
            key=lambda problem: position.get(problem.partition(": ")[0], len(position)),
        ),
    )


def _queue_shards(store: ReviewStore, log: Path, order: list[tuple[str, str]]) -> None:
    """The items in the shard files queued in `order` (one process's), any others after them; the files removed."""
    files = shard_files(log)
    if not files:
        return
    found = {}
    for file in files:
        for line in complete_lines(file, own=False):
            item = NewItem(**json.loads(line))
            found[item.source, item.source_id] = item
    store.add_items(found[key] for key in dict.fromkeys([*order, *found]) if key in found)
    for file in files:
        file.unlink()


def _batches(examples: Iterator[Example], size: int) -> Iterator[list[Example]]:
    if size < 1:
        raise ValueError(f"batch size must be at least 1, not {size}")
    while batch := list(itertools.islice(examples, size)):
        yield batch
