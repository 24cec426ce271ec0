"""Speech corpora named by a SPEC string, read the same way by import, eval and train.

A SPEC is `[NAME=]SOURCE[?key=value&...]`, SOURCE being one of
- a folder in the Hugging Face audiofolder layout: `metadata.csv` or `metadata.jsonl` with `file_name` and a
  `sentence`, `text` or `transcription` column;
- a Common Voice release folder: `<split>.tsv` beside `clips/` (`?split=test` by default);
- a folder written by `datasets.Dataset.save_to_disk`;
- anything `datasets.load_dataset` reads: a Hub dataset id or a local folder of parquet files, with `?config=` and
  `?split=` (e.g. `mozilla-foundation/common_voice_17_0?config=pt&split=test`).
Audio is never decoded here (`Audio(decode=False)`): `asr_pt.audio.load_audio` decodes with soundfile, so no
torchcodec or FFmpeg is needed.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

TEXT_COLUMNS = ("sentence", "text", "transcription", "normalized_text")
ID_COLUMNS = ("id", "path", "file_name", "client_id")
DEFAULT_SPLIT = "test"
# Per-clip columns that say nothing to slice a test set by (a speaker hash, vote counts, where the audio is).
UNSLICEABLE_COLUMNS = ("client_id", "up_votes", "down_votes", "segment", "audio", "file_name", "path", "sentence_id")
MAX_FIELD_CHARS = 200


class CorpusError(ValueError):
    """A SPEC that names nothing readable, with what was expected."""


def is_test_split(split: str | None) -> bool:
    """Whether a split name is a test split ("test", "test_clean"...): such clips must never be trained on."""
    return (split or "").lower().startswith("test")


@dataclass(frozen=True)
class Example:
    id: str  # the clip id within its corpus (Common Voice's `path`, audiofolder's `file_name`, ...)
    audio: str | bytes  # a file path or encoded bytes, for `asr_pt.audio.load_audio`
    text: str  # the reference exactly as the corpus gives it
    corpus: str  # the SPEC's name
    split: str | None
    fields: dict[str, str] = field(default_factory=dict, compare=False)  # the clip's other columns (gender, age...)

    @property
    def is_test(self) -> bool:
        """Test-split clips must never be trained on."""
        return is_test_split(self.split)


@dataclass(frozen=True)
class Spec:
    name: str
    source: str
    options: dict[str, str]

    @property
    def split(self) -> str | None:
        return self.options.get("split")


def parse_spec(spec: str) -> Spec:
    """`[NAME=]SOURCE[?key=value&...]`; the name defaults to the source's last path part (and split)."""
    head, _, query = spec.partition("?")
    name, _, source = head.rpartition("=")
    options = dict(parse_qsl(query))
    if not source:
        raise CorpusError(f"dataset SPEC {spec!r} names no source")
    if not name:
        name = Path(source.rstrip("/")).name + (f"-{options['split']}" if "split" in options else "")
    return Spec(name=name, source=source, options=options)


def _first_column(columns: list[str] | tuple[str, ...], wanted: tuple[str, ...], where: str) -> str:
    for column in wanted:
        if column in columns:
            return column
    raise CorpusError(f"{where} has none of the columns {', '.join(wanted)} (it has {', '.join(columns)})")


def clip_fields(row: dict, *taken: str | None) -> dict[str, str]:
    """A row's scalar columns other than the audio, the text and the id, as text: what eval can slice a test set by
    (Common Voice's gender, age, accents, variant...). Empty values are left out; long ones are cut."""
    return {
        str(column): str(value)[:MAX_FIELD_CHARS]
        for column, value in row.items()
        if column not in taken
        and column not in UNSLICEABLE_COLUMNS
        and isinstance(value, str | int | float | bool)
        and str(value).strip()
    }


def _read_audiofolder(folder: Path, spec: Spec) -> Iterator[Example]:
    if (folder / "metadata.jsonl").exists():
        with open(folder / "metadata.jsonl", encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
    else:
        with open(folder / "metadata.csv", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    if not rows:
        return
    text = _first_column(list(rows[0]), TEXT_COLUMNS, f"{folder}/metadata")
    for row in rows:
        fields = clip_fields(row, text)
        yield Example(row["file_name"], str(folder / row["file_name"]), row[text] or "", spec.name, spec.split, fields)


def _read_common_voice(folder: Path, spec: Spec) -> Iterator[Example]:
    split = spec.split or DEFAULT_SPLIT
    table = folder / f"{split}.tsv"
    if not table.exists():
        found = ", ".join(sorted(p.stem for p in folder.glob("*.tsv")))
        raise CorpusError(f"Common Voice folder {folder} has no {split}.tsv (it has: {found})")
    with open(table, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            clip = str(folder / "clips" / row["path"])
            yield Example(row["path"], clip, row["sentence"] or "", spec.name, split, clip_fields(row, "sentence"))


def _read_hf_dataset(dataset, spec: Spec, split: str | None) -> Iterator[Example]:
    from datasets import Audio

    audio_column = next((c for c, f in dataset.features.items() if isinstance(f, Audio)), None)
    if audio_column is None:
        raise CorpusError(f"dataset {spec.source} has no Audio column")
    dataset = dataset.cast_column(audio_column, Audio(decode=False))
    text = _first_column(dataset.column_names, TEXT_COLUMNS, f"dataset {spec.source}")
    id_column = next((c for c in ID_COLUMNS if c in dataset.column_names), None)
    for index, row in enumerate(dataset):
        audio = row[audio_column]
        clip_id = str(row[id_column]) if id_column else (audio.get("path") or str(index))
        # An export of the review store keeps each clip's original split, so test clips stay marked as test.
        row_split = row.get("source_split") or split
        fields = clip_fields(row, text, id_column, audio_column)
        yield Example(clip_id, audio["bytes"] or audio["path"], row[text] or "", spec.name, row_split, fields)


def _read_saved_to_disk(folder: Path, spec: Spec) -> Iterator[Example]:
    from datasets import DatasetDict, load_from_disk

    dataset = load_from_disk(str(folder))
    split = spec.split
    if isinstance(dataset, DatasetDict):
        split = split or DEFAULT_SPLIT
        if split not in dataset:
            raise CorpusError(f"{folder} has no split {split!r} (it has: {', '.join(dataset)})")
        dataset = dataset[split]
    yield from _read_hf_dataset(dataset, spec, split)


def _read_load_dataset(spec: Spec) -> Iterator[Example]:
    from datasets import load_dataset

    split = spec.split or DEFAULT_SPLIT
    # A local folder whose README declares `configs:` (as the review store's export does) is cached under its folder
    # name and file pattern alone, so a second folder of the same name would read back the first one's rows: local
    # folders are always read afresh (and not checked against the sizes cached for their namesake).
    local = Path(spec.source).expanduser().is_dir()
    fresh = {"download_mode": "force_redownload", "verification_mode": "no_checks"} if local else {}
    try:
        dataset = load_dataset(spec.source, spec.options.get("config"), split=split, **fresh)
    except Exception as error:  # datasets raises many kinds for "cannot find it"; all mean the same here
        raise CorpusError(f"could not load dataset {spec.source!r} (split {split}): {error}") from error
    yield from _read_hf_dataset(dataset, spec, split)


def resolved_source(spec: Spec) -> str:
    """The data a SPEC's source names, the same from any working folder: a local folder (also behind a registered
    scheme such as `store:`) made absolute, anything else (a hub id) as it is."""
    scheme, colon, rest = spec.source.partition(":")
    if colon and scheme in SCHEMES:
        return f"{scheme}:{Path(rest).expanduser().resolve()}"
    if Path(spec.source).expanduser().exists():
        return str(Path(spec.source).expanduser().resolve())
    return spec.source


# Readers for other schemes register here (the review store adds `store:`).
SCHEMES: dict[str, Callable[[Spec], Iterator[Example]]] = {}


def read_examples(spec: str | Spec, limit: int | None = None) -> Iterator[Example]:
    """Every example of the corpus a SPEC names, in the corpus's order, at most `limit`."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    scheme = spec.source.split(":", 1)[0]
    folder = Path(spec.source).expanduser()
    if scheme in SCHEMES:
        examples = SCHEMES[scheme](spec)
    elif (folder / "metadata.csv").exists() or (folder / "metadata.jsonl").exists():
        examples = _read_audiofolder(folder, spec)
    elif (folder / "clips").is_dir() and any(folder.glob("*.tsv")):
        examples = _read_common_voice(folder, spec)
    elif (folder / "dataset_info.json").exists() or (folder / "dataset_dict.json").exists():
        examples = _read_saved_to_disk(folder, spec)
    else:
        examples = _read_load_dataset(spec)
    for count, example in enumerate(examples):
        if limit is not None and count >= limit:
            return
        yield example
