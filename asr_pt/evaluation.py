"""Models measured on corpora the way the model card measures them, resumably, with intervals that say whether a
difference between two models is real.

The protocol is the card's: references in written form, hypotheses as the model wrote them (stripped), greedy
decoding, corpus-level WER and CER with jiwer (x100, two decimals); the normalised scores put both sides through the
Open ASR Leaderboard's normaliser. Speed is RTFx (audio seconds over transcription seconds, after a warm-up batch),
as the leaderboard measures it. Every transcript is appended to `predictions.jsonl` as soon as its batch is done, so
an interrupted run, or a run with one more model, computes only what is missing.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jiwer
import numpy as np
from tqdm.auto import tqdm

from asr_pt.audio import AudioError, load_audio
from asr_pt.corpora import DEFAULT_SPLIT, Example, Spec, parse_spec, read_examples, resolved_source
from asr_pt.metrics import Scores, prepare, score, score_pair
from asr_pt.models import DEFAULT_LANGUAGE, ASRModel, release_memory
from asr_pt.text import written_form
from asr_pt.training_data import TRAINING_RECORD

PREDICTIONS_FILE = "predictions.jsonl"
RESULTS_FILE = "results.json"
RESAMPLES = 10_000
SEED = 0


class EvaluationError(ValueError):
    """An evaluation that cannot go on as asked, with what to change."""


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
    """`predictions.jsonl`, one line per dataset, model and utterance, appended a batch at a time."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows: dict[tuple[str, str, str], dict] = {}
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            # A run killed while writing leaves half a line; cut it so that appending starts on a line of its own.
            data = data[: data.rfind(b"\n") + 1]
            os.truncate(self.path, len(data))
        for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                self.rows[row["dataset"], row["model"], row["id"]] = row
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise EvaluationError(
                    f"{self.path} line {number} is not a prediction ({type(error).__name__}: {error}); "
                    "fix or delete that line, or give another --output"
                ) from error

    def is_current(self, dataset: str, model: str, example: Example) -> bool:
        """A row for this example whose reference is still the example's: one whose reference has changed since (a
        corrected transcript, say) is transcribed and scored again."""
        row = self.rows.get((dataset, model, example.id))
        return row is not None and row["reference"] == example.text

    def append(self, rows: Iterable[dict]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                self.rows[row["dataset"], row["model"], row["id"]] = row
            f.flush()
            os.fsync(f.fileno())

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


def error_counts(rows: Sequence[dict]) -> np.ndarray:
    """(word errors, reference words, character errors, reference characters) of each row under the card's protocol,
    shape (n, 4): a corpus rate is the sum of an errors column over the sum of the next one, as jiwer computes it."""
    counts = np.zeros((len(rows), 4), dtype=np.int64)
    for index, row in enumerate(rows):
        reference, hypothesis = prepare(row["reference"], row["hypothesis"], "written")
        words, characters = jiwer.process_words(reference, hypothesis), jiwer.process_characters(reference, hypothesis)
        counts[index] = [
            words.substitutions + words.deletions + words.insertions,
            words.substitutions + words.deletions + words.hits,
            characters.substitutions + characters.deletions + characters.insertions,
            characters.substitutions + characters.deletions + characters.hits,
        ]
    return counts


def _rate(errors: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Errors per hundred reference words (or characters), computed in jiwer's order so the figures equal its own."""
    return 100.0 * (errors / total)


def bootstrap_wers(errors: np.ndarray, words: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """Corpus WERs (%) of each model, one per row of `errors` (models x utterances), on `resamples` resamplings of
    the utterances with replacement: shape (resamples, models). Every model sees the same resamplings, so the
    differences between columns are paired."""
    errors, words = np.atleast_2d(errors), np.asarray(words)
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // (words.size * errors.shape[0]))  # bounds memory on large test sets
    wers = np.empty((resamples, errors.shape[0]))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        index = rng.integers(0, words.size, size=(size, words.size))
        wers[start : start + size] = 100.0 * errors[:, index].sum(axis=2).T / words[index].sum(axis=1)[:, None]
    return wers


def interval(samples: np.ndarray) -> tuple[float, float]:
    """The 95% percentile interval, rounded like the scores."""
    low, high = np.percentile(samples, [2.5, 97.5])
    return round(float(low), 2) + 0.0, round(float(high), 2) + 0.0  # + 0.0 turns -0.0 into 0.0


@dataclass(frozen=True)
class Comparison:
    """Two models on the same utterances of one dataset, as the model card's table compares them."""

    dataset: str
    baseline: str
    candidate: str
    samples: int
    baseline_wer: float
    candidate_wer: float
    baseline_cer: float
    candidate_cer: float
    delta: float  # candidate WER - baseline WER, in points: negative is better
    relative: float  # delta as a percentage of the baseline WER
    ci95: tuple[float, float]  # paired bootstrap interval of `delta`

    @property
    def significant(self) -> bool:
        """The interval leaves out zero: the difference is unlikely to be resampling noise."""
        return not self.ci95[0] <= 0 <= self.ci95[1]


def compare(
    baseline: Sequence[dict],
    candidate: Sequence[dict],
    resamples: int = RESAMPLES,
    seed: int = SEED,
    *,
    counts: tuple[np.ndarray, np.ndarray] | None = None,
) -> Comparison:
    """The card's comparison of two models' prediction rows on the utterances both have; `counts` are the two sets of
    rows' `error_counts` when the caller has them already."""
    by_id = {row["id"]: index for index, row in enumerate(candidate)}
    pairs = np.array([(index, by_id[row["id"]]) for index, row in enumerate(baseline) if row["id"] in by_id])
    if not pairs.size:
        raise EvaluationError("the two models have no utterance in common to compare")
    baseline_counts, candidate_counts = counts or (error_counts(baseline), error_counts(candidate))
    paired = np.stack([baseline_counts[pairs[:, 0]], candidate_counts[pairs[:, 1]]])  # (2 models, n, 4)
    errors, words = paired[:, :, 0], paired[0, :, 1]
    wer = _rate(errors.sum(axis=1), words.sum())
    cer = _rate(paired[:, :, 2].sum(axis=1), paired[0, :, 3].sum())
    resampled = bootstrap_wers(errors, words, resamples, seed)
    first_baseline, first_candidate = baseline[pairs[0, 0]], candidate[pairs[0, 1]]
    return Comparison(
        dataset=first_baseline["dataset"],
        baseline=first_baseline["model"],
        candidate=first_candidate["model"],
        samples=len(pairs),
        baseline_wer=round(float(wer[0]), 2),
        candidate_wer=round(float(wer[1]), 2),
        baseline_cer=round(float(cer[0]), 2),
        candidate_cer=round(float(cer[1]), 2),
        delta=round(float(wer[1] - wer[0]), 2),
        relative=round(100.0 * float(wer[1] - wer[0]) / float(wer[0]), 1) if wer[0] else float("nan"),
        ci95=interval(resampled[:, 1] - resampled[:, 0]),
    )


def score_rows(
    rows: Sequence[dict], resamples: int = RESAMPLES, seed: int = SEED, *, counts: np.ndarray | None = None
) -> dict:
    """One model's scores on one dataset from its prediction rows, as `results.json` holds them; `counts` are the
    rows' `error_counts` when the caller has them already."""
    counts = error_counts(rows) if counts is None else counts
    totals = counts.sum(axis=0)
    normalized = score([r["reference"] for r in rows], [r["hypothesis"] for r in rows], "normalized")
    audio_seconds = sum(r["audio_seconds"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    return {
        "wer": round(float(_rate(totals[0], totals[1])), 2),
        "cer": round(float(_rate(totals[2], totals[3])), 2),
        "wer_normalized": round(normalized.wer, 2),
        "cer_normalized": round(normalized.cer, 2),
        "n": len(rows),
        "audio_seconds": round(audio_seconds, 2),
        "rtfx": round(audio_seconds / seconds, 2) if seconds else None,
        "wer_ci95": list(interval(bootstrap_wers(counts[:, 0], counts[:, 1], resamples, seed)[:, 0])),
        "truncated": sum(bool(r.get("truncated")) for r in rows),
    }


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
) -> None:
    todo = [
        example
        for example in corpus.examples
        if not predictions.is_current(corpus.name, name, example) and example.id not in corpus.skipped_audio
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
            if batch and name not in warmed_up:  # the first call pays for allocation and kernel set-up: untimed
                model.transcribe_batch(audios, language=language)
                warmed_up.add(name)
            transcripts = model.transcribe_batch(audios, language=language)
            predictions.append(
                {
                    "dataset": corpus.name,
                    "source": source,
                    "model": name,
                    "model_id": model.model_id,
                    "id": example.id,
                    "reference": example.text,
                    "hypothesis": transcript.text,
                    **_rounded(score_pair(example.text, transcript.text)),
                    "audio_seconds": round(transcript.audio_seconds, 4),
                    "seconds": round(transcript.seconds, 6),
                    "truncated": transcript.truncated,
                    "language": transcript.language,
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
    batch_size: int = 16,
    language: str | None = DEFAULT_LANGUAGE,
    max_new_tokens: int = 512,
    device: str | None = None,
    dtype: str | None = None,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    verbose: bool = True,
) -> dict:
    """Transcribe what `output_dir/predictions.jsonl` lacks, then write `results.json`, `report.md` and
    `report.png` there; returns the results, `{dataset: {model: scores}}`.

    `models` maps a name (the report's column) to a hub id or checkpoint folder; the first is the baseline every
    other one is compared with. Models are loaded one at a time, only when something is left for them to transcribe.
    `verbose` shows progress bars per dataset and model and prints the tables at the end.
    """
    from asr_pt.report import notes, summary, write_report

    if not models or not datasets:
        raise EvaluationError("give at least one model and one dataset")
    if batch_size < 1:
        raise EvaluationError(f"the batch size must be at least 1, not {batch_size}")
    corpora = [read_corpus(spec, limit) for spec in datasets]
    duplicated = [name for name, count in Counter(c.name for c in corpora).items() if count > 1]
    if duplicated:
        raise EvaluationError(f"two datasets are named {duplicated[0]!r}; name them apart with NAME=SPEC")
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    predictions = Predictions(output / PREDICTIONS_FILE)
    predictions.check_names({corpus.name: corpus.source for corpus in corpora}, models)

    warmed_up: set[str] = set()
    for name, model_id in models.items():
        model = ASRModel(model_id, device=device, dtype=dtype, max_new_tokens=max_new_tokens, max_batch_size=batch_size)
        for corpus in corpora:
            _transcribe_missing(model, name, corpus, predictions, batch_size, language, warmed_up, verbose)
        del model
        release_memory()  # one model in memory at a time

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
    (output / RESULTS_FILE).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    skipped_audio = {c.name: c.skipped_audio for c in corpora}
    write_report(output, results, comparisons, rows, skipped_audio, resamples, seed)
    if verbose:
        print(summary(results, comparisons), "", *notes(results, skipped_audio), sep="\n")
    return results
