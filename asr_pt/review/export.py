"""The corrected items as a dataset folder: parquet for `datasets`, JSONL for Qwen's SFT recipe, and a dataset card.

The folder's layout is the contract with eval, train and the Hub sync:
`data/train-00000-of-00001.parquet` (audio bytes embedded, `Audio` feature), `audio/<hash>.wav` (what `sft.jsonl`
points at), `sft.jsonl` and `README.md`. Files are written beside their final name and moved into place, so a reader
(or a Hub upload) never sees half a file. `restore_export` reads such a folder back into an empty store.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from asr_pt.audio import SAMPLE_RATE, load_audio
from asr_pt.markdown import table
from asr_pt.review.items import NewItem, SaveConflict, StoreError
from asr_pt.review.store import ReviewStore

PARQUET_PATH = "data/train-00000-of-00001.parquet"
COLUMNS = (
    "id",
    "text",
    "reference",
    "hypothesis_finetuned",
    "hypothesis_base",
    "model_finetuned",
    "model_base",
    "verdict",
    "reviewer",
    "source",
    "source_id",
    "source_split",
    "is_test",
    "duration",
    "audio_hash",
)


@dataclass(frozen=True)
class ExportSummary:
    folder: Path
    items: int
    test_items: int  # in the parquet, marked is_test; left out of sft.jsonl
    hours: float


def export_dataset(store: ReviewStore, out_dir: str | Path) -> ExportSummary:
    """Write every corrected, unflagged item to `out_dir` (replacing an earlier export there); StoreError if none."""
    from datasets import Audio, Dataset, Features, Value

    from asr_pt.models import target_text  # the SFT target the trainer expects (imported here: it loads torch)

    items = store.corrected()
    if not items:  # `datasets` cannot write a parquet file without rows
        raise StoreError("nothing to export yet: no item has been corrected")
    out = Path(out_dir).resolve()
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "audio").mkdir(exist_ok=True)

    wanted = set()
    for item in items:
        target = out / "audio" / f"{item.audio_hash}.wav"
        wanted.add(target.name)
        if not target.exists():
            _link_or_copy(store.audio_path(item.audio_hash), target)
    for stale in (out / "audio").glob("*.wav"):  # items flagged since the last export leave no audio behind
        if stale.name not in wanted:
            stale.unlink()

    rows = {column: [] for column in ("audio",) + COLUMNS}
    for item in items:
        wav = out / "audio" / f"{item.audio_hash}.wav"
        rows["audio"].append({"bytes": wav.read_bytes(), "path": wav.name})
        values = {"id": str(item.id), "verdict": item.verdict or "", "reviewer": item.reviewer or ""}
        values["is_test"] = item.is_test
        for column in COLUMNS:
            rows[column].append(values[column] if column in values else getattr(item, column))
    features = Features(
        {
            "audio": {"bytes": Value("binary"), "path": Value("string")},
            **{c: Value("string") for c in COLUMNS if c not in ("is_test", "duration")},
            "is_test": Value("bool"),
            "duration": Value("float64"),
        }
    )
    dataset = Dataset.from_dict(rows, features=features)
    dataset = dataset.cast_column("audio", Audio(sampling_rate=SAMPLE_RATE, decode=False))
    _write_atomically(out / PARQUET_PATH, lambda path: dataset.to_parquet(str(path)))

    def write_sft(path: Path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            for item in items:
                if not item.is_test:  # SFT files are training input: test clips must never reach one
                    line = {"audio": str(out / "audio" / f"{item.audio_hash}.wav"), "text": target_text(item.text)}
                    f.write(json.dumps(line, ensure_ascii=False) + "\n")

    _write_atomically(out / "sft.jsonl", write_sft)
    summary = ExportSummary(
        folder=out,
        items=len(items),
        test_items=sum(item.is_test for item in items),
        hours=sum(item.duration for item in items) / 3600,
    )
    card = dataset_card(store, items, summary)
    _write_atomically(out / "README.md", lambda path: path.write_text(card, encoding="utf-8"))
    return summary


def dataset_card(store: ReviewStore, items: list, summary: ExportSummary) -> str:
    """A Hugging Face dataset card: what is in the export, where it came from, and what must not be trained on."""
    by_source = collections.Counter((item.source, item.source_split or "-") for item in items)
    verdicts = collections.Counter(item.verdict or "none" for item in items)
    models = sorted({(item.model_finetuned, item.model_base) for item in items})
    agreements = [item.agreement_wer for item in items if item.agreement_wer is not None]
    lines = [
        "---",
        "pretty_name: asr-pt reviewed Portuguese transcripts",
        "language:",
        "- pt",
        "task_categories:",
        "- automatic-speech-recognition",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        "    path: data/train-*",
        "---",
        "",
        "# asr-pt reviewed Portuguese transcripts",
        "",
        "Clips transcribed by a fine-tuned and a base Qwen3-ASR model, then corrected by human reviewers in the",
        "asr-pt review app. `text` is the reviewer's correction in written form (capital first letter, final",
        "punctuation); both models' hypotheses, the source's own reference and the reviewer's verdict are kept.",
        "",
        "## Counts",
        "",
        f"- items: {summary.items} ({summary.hours:.2f} hours of audio)",
        f"- reviewers: {len({item.reviewer for item in items})}",
        f"- test-split clips: {summary.test_items} (`is_test` is true; they are left out of `sft.jsonl` and must "
        "never be trained on)",
        "- verdicts: " + (", ".join(f"{v} {n}" for v, n in sorted(verdicts.items())) or "none"),
        f"- items with two or more reviews: {len(agreements)}"
        + (f", mean WER between reviewers {sum(agreements) / len(agreements):.2f}%" if agreements else ""),
        "",
        "## Provenance",
        "",
        table(["source", "split", "items"], [[source, split, n] for (source, split), n in sorted(by_source.items())]),
        "",
        "Models (fine-tuned / base): " + ("; ".join(f"`{f}` / `{b}`" for f, b in models) or "none"),
        "",
        f"Exported {time.strftime('%Y-%m-%d %H:%M:%S %Z')} from a review store at schema version "
        f"{store.schema_version}.",
        "",
        "## Use",
        "",
        "```python",
        "from datasets import Audio, load_dataset",
        "",
        'rows = load_dataset("parquet", data_files="data/*.parquet", split="train")',
        'rows = rows.cast_column("audio", Audio(decode=False))  # 16 kHz WAV bytes',
        "```",
        "",
        "`sft.jsonl` holds `{audio, text}` lines in the format of Qwen3-ASR's fine-tuning recipe.",
        "",
    ]
    return "\n".join(lines)


def restore_export(store: ReviewStore, folder: str | Path) -> int:
    """Load an export's corrected items into a store (e.g. after a Space restarted empty); returns how many.

    Each row was corrected already, so it is restored as corrected whatever the store's `reviews_needed`. Items
    already in the store with any saved work (a correction, a skip, a flag) are left as they are, so restoring twice
    changes nothing.
    """
    from datasets import Audio, load_dataset

    parquet = Path(folder) / PARQUET_PATH
    if not parquet.exists():
        raise StoreError(f"{folder} is not an export: it has no {PARQUET_PATH}")
    rows = load_dataset("parquet", data_files=str(parquet), split="train").cast_column("audio", Audio(decode=False))
    # One review completes an item here: with the store's own reviews_needed > 1 a restored item would go back to the
    # queue with one review, and the next Hub push would export it as missing.
    restorer = ReviewStore(store.data_dir, lease_seconds=store.lease_seconds, reviews_needed=1)
    restored = 0
    try:
        for row in rows:
            audio_hash, seconds = restorer.put_audio(load_audio(row["audio"]["bytes"]))
            fields = {name: row[name] for name in NewItem.__dataclass_fields__ if name in row}
            [item_id] = restorer.add_items([NewItem(**{**fields, "audio_hash": audio_hash, "duration": seconds})])
            if restorer.get(item_id).version > 0:
                continue  # in the store already, maybe with newer work: keep that, and add nothing to its history
            try:
                item = restorer.save(item_id, row["reviewer"] or "restored", row["text"], 0, row["verdict"] or None)
            except SaveConflict:
                continue  # someone saved it this very moment
            restored += item.status == "corrected"
    finally:
        restorer.close()
    return restored


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _write_atomically(path: Path, write) -> None:
    partial = path.with_name(f".{path.name}.partial")
    write(partial)
    os.replace(partial, path)
