"""Models measured on corpora the way the model card measures them, resumably, with intervals that say whether a
difference between two models is real.

The protocol is the card's, as its author's `evaluate_model` computes it: references in written form, hypotheses the
raw greedy `generate` decode (stripped; `ASRModel.generate_batch`), batches of 8 and 128 new tokens by default,
corpus-level WER and CER with jiwer (x100, two decimals); the normalised scores are the Open ASR Leaderboard's
Portuguese protocol. Scores per slice (`eval.slices`) and error tables (`eval.errors`) say where models differ.
Speed is RTFx (audio seconds over transcription seconds, after a warm-up batch), as the leaderboard measures it.
Every transcript is appended to `predictions.jsonl` as soon as its batch is done, so an interrupted run, or a
run with one more model, computes only what is missing.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from asr_pt.audio import AudioError, load_audio
from asr_pt.corpora import DEFAULT_SPLIT, Example, Spec, parse_spec, read_examples, resolved_source
from asr_pt.explore import PREDICTIONS_FILE, RESULTS_FILE
from asr_pt.metrics import Scores, score_pair
from asr_pt.models import DEFAULT_LANGUAGE, TRAINING_RECORD, ASRModel, release_memory
from asr_pt.review import store as _store  # noqa: F401  (registers the `store:DATA_DIR` corpus scheme)
from asr_pt.shards import SINGLE, Shard, append_rows, complete_lines, shard_files
from asr_pt.text import written_form
from eval.confidence import confidence_scores
from eval.errors import error_kinds, utterance_changes
from eval.report import notes, summary, write_report
from eval.scores import RESAMPLES, SEED, EvaluationError, compare, error_counts, score_rows
from eval.slices import slice_columns, slice_scores

SLICES_FILE = "slices.json"
# How hypotheses are decoded: the greedy `generate` output as it is (`ASRModel.generate_batch`).
DECODE = "generate"
# The seed author's evaluate_model defaults, which made the model card's numbers.
BATCH_SIZE = 8
MAX_NEW_TOKENS = 128


@dataclass
class Corpus:
    """The examples of one dataset SPEC that can be scored, and what was left out and why."""

    spec: Spec
    examples: list[Example]
    empty_references: int  # dropped: nothing to score against once in written form
    skipped_audio: dict[str, str] = field(default_factory=dict)  # id -> why the audio could not be used

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def source(self) -> str:
        """What data the SPEC reads, whatever it is named or where the run starts: the resolved source and its
        options, the split defaulted as the readers default it."""
        options = self.spec.options | {"split": self.spec.split or DEFAULT_SPLIT}
        return resolved_source(self.spec) + "?" + "&".join(f"{key}={value}" for key, value in sorted(options.items()))


def read_corpus(spec: str, limit: int | None = None) -> Corpus:
    """The first `limit` examples of a SPEC, without empty references; repeated ids get a `#2`, `#3`... suffix so
    every prediction has a key of its own."""
    parsed = parse_spec(spec)
    examples, empty, seen = [], 0, Counter()
    for example in read_examples(parsed, limit):
        if not written_form(example.text):
            empty += 1
            continue
        seen[example.id] += 1
        if seen[example.id] > 1:
            example = dataclasses.replace(example, id=f"{example.id}#{seen[example.id]}")
        examples.append(example)
    if not examples:
        raise EvaluationError(f"dataset {spec!r} has no examples with a reference ({empty} empty ones dropped)")
    return Corpus(parsed, examples, empty)


class Predictions:
    """`predictions.jsonl`, one line per dataset, model and utterance, appended a batch at a time.

    Under several processes (`asr_pt.shards`) each appends to a shard file of its own and the main process `merge`s
    them into `predictions.jsonl` at the end. What a killed run left in shard files is merged first, before any process
    reads, so every row has one place and a rerun computes only what no process wrote.
    """

    def __init__(self, path: str | Path, shard: Shard = SINGLE):
        self.path = Path(path)
        self.own = shard.file(self.path)
        self.rows: dict[tuple[str, str, str], dict] = {}
        if shard.main:
            self.merge(())
        shard.wait()
        if self.path.exists():
            self.rows = self._read(self.path, own=shard.main)

    @staticmethod
    def _read(path: Path, own: bool) -> dict[tuple[str, str, str], dict]:
        rows = {}
        for number, line in enumerate(complete_lines(path, own), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows[row["dataset"], row["model"], row["id"]] = row
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise EvaluationError(
                    f"{path} line {number} is not a prediction ({type(error).__name__}: {error}); "
                    "fix or delete that line, or give another --output"
                ) from error
        return rows

    def is_current(self, dataset: str, model: str, example: Example) -> bool:
        """A row for this example whose reference is still the example's, decoded the card's way, with word
        confidences: one whose reference has changed since (a corrected transcript, say), or one written before eval
        took the raw decode or kept confidences, is transcribed and scored again."""
        row = self.rows.get((dataset, model, example.id))
        return row is not None and row["reference"] == example.text and row.get("decode") == DECODE and "words" in row

    def append(self, rows: Iterable[dict]) -> None:
        rows = list(rows)
        append_rows(self.own, rows)
        self.rows |= {(row["dataset"], row["model"], row["id"]): row for row in rows}

    def merge(self, keys: Iterable[tuple[str, str, str]]) -> None:
        """On the main process, when no other one writes: the shard files' rows appended to `predictions.jsonl` in the
        order of `keys` (one process's order), any others after them, and the shard files removed."""
        shards = shard_files(self.path)
        if not shards:
            return
        written = self._read(self.path, own=True) if self.path.exists() else {}
        found = {key: row for file in shards for key, row in self._read(file, own=False).items()}
        ordered = [key for key in dict.fromkeys([*keys, *found]) if key in found]
        append_rows(self.path, [found[key] for key in ordered if written.get(key) != found[key]])
        self.rows |= found
        for file in shards:
            file.unlink()

    def select(self, dataset: str, model: str, ids: Iterable[str]) -> list[dict]:
        """The rows of one dataset and model for `ids`, in their order, leaving out ids it has no row for."""
        return [self.rows[key] for key in ((dataset, model, i) for i in ids) if key in self.rows]

    def check_names(self, datasets: dict[str, str], models: dict[str, str]) -> None:
        """Rows are reused by dataset and model name, so a name must keep meaning the same data (`Corpus.source`) and
        the same model (hub id or checkpoint folder)."""
        for what, field_name, position, named in (("dataset", "source", 0, datasets), ("model", "model_id", 1, models)):
            for name, value in named.items():
                recorded = {
                    row.get(field_name, "(unrecorded)") for key, row in self.rows.items() if key[position] == name
                }
                if recorded - {value}:
                    raise EvaluationError(
                        f"{self.path} holds predictions of {what} '{name}' = {', '.join(sorted(recorded))}, but this "
                        f"run names '{name}' = {value}; give it another name or use another --output"
                    )


def _corpus_key(spec: Spec) -> tuple[str, str]:
    """What makes two SPECs the same data for the held-out guard: the resolved source and the split."""
    return resolved_source(spec), spec.split or DEFAULT_SPLIT


def training_record(model_id: str) -> dict | None:
    """What `train` recorded about a local checkpoint (`asr_pt_training.json`), or None for a hub model."""
    path = Path(model_id).expanduser() / TRAINING_RECORD
    if not path.is_file():
        return None
    unknown = "cannot tell which data the checkpoint was trained and selected on"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise EvaluationError(f"{path} is not valid JSON ({error}); {unknown}") from error
    if not isinstance(record, dict):
        raise EvaluationError(f"{path} holds no JSON object; {unknown}")
    return record


def seen_in_training(dataset: Spec, record: dict | None) -> list[str]:
    """Which of "selected_on" and "trained_on" name this dataset: a score on it says nothing about held-out data."""
    if not record:
        return []
    key = _corpus_key(dataset)
    return [
        role
        for role in ("selected_on", "trained_on")
        if any(_corpus_key(parse_spec(spec)) == key for spec in record.get(role) or [])
    ]


def _rounded(scores: Scores) -> dict[str, float]:
    return {"wer": round(scores.wer, 2), "cer": round(scores.cer, 2)}


def _transcribe_missing(
    model: ASRModel,
    name: str,
    corpus: Corpus,
    predictions: Predictions,
    batch_size: int,
    language: str | None,
    warmed_up: set[str],
    progress: bool,
    shard: Shard,
) -> None:
    todo = [
        example
        for index, example in enumerate(corpus.examples)
        if shard.owns(index)
        and not predictions.is_current(corpus.name, name, example)
        and example.id not in corpus.skipped_audio
    ]
    if not todo:
        return
    source = corpus.source
    with tqdm(total=len(todo), desc=f"{corpus.name} · {name}", unit="clip", disable=not progress) as bar:
        for start in range(0, len(todo), batch_size):
            batch, audios = [], []
            for example in todo[start : start + batch_size]:
                try:
                    audios.append(load_audio(example.audio))
                    batch.append(example)
                except AudioError as error:
                    corpus.skipped_audio[example.id] = str(error)
            if not batch:
                bar.update(len(todo[start : start + batch_size]))
                continue
            if name not in warmed_up:  # the first call pays for allocation and kernel set-up: untimed
                model.generate_batch(audios, language=language)
                warmed_up.add(name)
            transcripts = model.generate_batch(audios, language=language)
            predictions.append(
                {
                    "dataset": corpus.name,
                    "source": source,
                    "model": name,
                    "model_id": model.model_id,
                    "id": example.id,
                    "reference": example.text,
                    "hypothesis": transcript.text,
                    "words": [[w.word, round(w.confidence, 4)] for w in transcript.words],
                    **_rounded(score_pair(example.text, transcript.text)),
                    "audio_seconds": round(transcript.audio_seconds, 4),
                    "seconds": round(transcript.seconds, 6),
                    "truncated": transcript.truncated,
                    "language": transcript.language,
                    "decode": DECODE,
                    "audio": example.audio if isinstance(example.audio, str) else None,
                    "fields": example.fields,
                }
                for example, transcript in zip(batch, transcripts, strict=True)
            )
            bar.update(len(todo[start : start + batch_size]))


def evaluate(
    models: dict[str, str],
    datasets: Sequence[str],
    output_dir: str | Path,
    *,
    limit: int | None = None,
    batch_size: int = BATCH_SIZE,
    language: str | None = DEFAULT_LANGUAGE,
    max_new_tokens: int = MAX_NEW_TOKENS,
    device: str | None = None,
    dtype: str | None = None,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    slice_by: Sequence[str] | None = None,
    verbose: bool = True,
    shard: Shard = SINGLE,
) -> dict | None:
    """Transcribe what `output_dir/predictions.jsonl` lacks, then write `results.json`, `report.md` and
    `report.png` there; returns the results, `{dataset: {model: scores}}`.

    `models` maps a name (the report's column) to a hub id or checkpoint folder; the first is the baseline every
    other one is compared with. Models are loaded one at a time, only when something is left for them to transcribe.
    `slice_by` names the dataset columns to score each model on value by value (default: Common Voice's gender,
    age, accent and variant where the data has them, and duration bins). `verbose` shows progress bars per dataset
    and model and prints the tables at the end.

    Under torchrun, `shard` (`asr_pt.shards.launched()`) is this process's share of every dataset's clips: each process
    transcribes its own, and the main one merges the predictions and writes the very files one process writes; the
    others return None.
    """
    if not models or not datasets:
        raise EvaluationError("give at least one model and one dataset")
    if batch_size < 1:
        raise EvaluationError(f"the batch size must be at least 1, not {batch_size}")
    corpora = [read_corpus(spec, limit) for spec in datasets]
    duplicated = [name for name, count in Counter(c.name for c in corpora).items() if count > 1]
    if duplicated:
        raise EvaluationError(f"two datasets are named {duplicated[0]!r}; name them apart with NAME=SPEC")
    for corpus in corpora:  # an unknown --slice-by column is refused before any model runs
        slice_columns([{"fields": example.fields} for example in corpus.examples], slice_by)
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    predictions = Predictions(output / PREDICTIONS_FILE, shard)
    predictions.check_names({corpus.name: corpus.source for corpus in corpora}, models)

    warmed_up: set[str] = set()
    for name, model_id in models.items():
        model = ASRModel(
            model_id, device=shard.device(device), dtype=dtype, max_new_tokens=max_new_tokens, max_batch_size=batch_size
        )
        for corpus in corpora:
            _transcribe_missing(
                model, name, corpus, predictions, batch_size, language, warmed_up, verbose and shard.main, shard
            )
        del model
        release_memory()  # one model in memory at a time
    skipped_by_process = shard.gather({corpus.name: corpus.skipped_audio for corpus in corpora})
    if not shard.main:
        return None
    predictions.merge((corpus.name, name, e.id) for name in models for corpus in corpora for e in corpus.examples)
    for corpus in corpora:  # in the clips' order, as one process finds them
        skipped = {i: why for process in skipped_by_process for i, why in process[corpus.name].items()}
        corpus.skipped_audio = {e.id: skipped[e.id] for e in corpus.examples if e.id in skipped}

    results: dict[str, dict[str, dict]] = {}
    rows: dict[tuple[str, str], list[dict]] = {}
    counts: dict[tuple[str, str], np.ndarray] = {}  # error_counts of each rows entry, computed once
    for corpus in corpora:
        ids = [e.id for e in corpus.examples if e.id not in corpus.skipped_audio]
        if not ids:
            raise EvaluationError(f"dataset {corpus.name!r}: no clip has usable audio ({corpus.skipped_audio})")
        results[corpus.name] = {}
        for name, model_id in models.items():
            rows[corpus.name, name] = predictions.select(corpus.name, name, ids)
            counts[corpus.name, name] = error_counts(rows[corpus.name, name])
            seen = seen_in_training(corpus.spec, training_record(model_id))
            results[corpus.name][name] = {
                **score_rows(rows[corpus.name, name], resamples, seed, counts=counts[corpus.name, name]),
                "empty_references": corpus.empty_references,
                "skipped_audio": len(corpus.skipped_audio),
                "held_out": not seen,
                "seen_in_training": seen,
            }
    baseline, *candidates = models
    comparisons = [
        compare(
            rows[corpus.name, baseline],
            rows[corpus.name, candidate],
            resamples,
            seed,
            counts=(counts[corpus.name, baseline], counts[corpus.name, candidate]),
        )
        for corpus in corpora
        for candidate in candidates
    ]
    slices = [
        score
        for corpus in corpora
        for score in slice_scores(
            corpus.name,
            {name: rows[corpus.name, name] for name in models},
            {name: counts[corpus.name, name] for name in models},
            slice_columns(rows[corpus.name, baseline], slice_by),
            resamples,
            seed,
        )
    ]
    kinds = [error_kinds(model_rows) for model_rows in rows.values() if model_rows]
    changes = [
        utterance_changes(
            rows[corpus.name, baseline],
            rows[corpus.name, candidate],
            (counts[corpus.name, baseline][:, 0], counts[corpus.name, candidate][:, 0]),
        )
        for corpus in corpora
        for candidate in candidates
    ]
    confidences = [confidence_scores(dataset, model, model_rows) for (dataset, model), model_rows in rows.items()]
    (output / RESULTS_FILE).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    analysis = {"slices": slices, "errors": kinds, "utterances": changes, "confidence": confidences}
    analysis = {key: [dataclasses.asdict(item) for item in items] for key, items in analysis.items()}
    (output / SLICES_FILE).write_text(json.dumps(analysis, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    skipped_audio = {c.name: c.skipped_audio for c in corpora}
    write_report(
        output, results, comparisons, rows, skipped_audio, resamples, seed, slices, kinds, changes, confidences
    )
    if verbose:
        print(summary(results, comparisons), "", *notes(results, skipped_audio), sep="\n")
    return results
