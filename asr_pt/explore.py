"""An eval output folder opened for browsing, the way NeMo's Speech Data Explorer opens a manifest: one row per
utterance (dataset, slice values, duration, each model's WER, the candidate's Δ to the baseline), filters, the
details of one utterance, and the clips where the models fail queued for review.

Only folders found under the eval root (`runs/`, or `ASR_PT_EVAL_DIR`) can be opened, by name; audio is read only
from what that folder's `predictions.jsonl` references. A file cut off mid-line, a line that is not a prediction or
a missing clip is reported and the rest is still shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import pandas as pd

from asr_pt.audio import AudioError, load_audio
from asr_pt.corpora import is_test_split
from asr_pt.metrics import align_words
from asr_pt.review.items import NewItem
from asr_pt.review.store import ReviewStore
from asr_pt.text import normalize

PREDICTIONS_FILE = "predictions.jsonl"
RESULTS_FILE = "results.json"
SLICE_FIELDS = ("gender", "age", "accents", "accent", "variant", "locale")  # Common Voice's, when present
DURATION_BINS = ((0.0, "< 3 s"), (3.0, "3-5 s"), (5.0, "5-8 s"), (8.0, "≥ 8 s"))
ROWS_SHOWN = 500  # the table shows the first rows of a filtered view; the counts cover all of it
MAX_PROBLEMS_SHOWN = 5
REQUIRED_KEYS = {"dataset", "model", "id", "reference", "hypothesis"}


class ExploreError(ValueError):
    """A folder that cannot be opened, with what was expected."""


def eval_folders(root: Path) -> dict[str, Path]:
    """The folders under the eval root that can be opened, by the name the page shows: the root's subfolders and
    their subfolders (a training run keeps its eval one level down). The page only ever sends back one of these
    names; a path from the browser is never opened."""
    if not root.is_dir():
        return {}
    found = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        found[folder.name] = folder
        for inner in sorted(p for p in folder.iterdir() if p.is_dir() and (p / PREDICTIONS_FILE).is_file()):
            found[f"{folder.name}/{inner.name}"] = inner
    return found


def duration_bin(seconds: float) -> str:
    return next(label for start, label in reversed(DURATION_BINS) if seconds >= start)


def duration_bins(seconds: np.ndarray) -> np.ndarray:
    """`duration_bin` of many clips at once."""
    edges, labels = zip(*DURATION_BINS, strict=True)
    return np.array(labels)[np.maximum(np.searchsorted(edges, seconds, side="right") - 1, 0)]


@dataclass
class EvalView:
    """One opened eval folder: the utterance table, the rows behind it and what could not be read."""

    folder: Path
    baseline: str
    candidate: str | None
    table: pd.DataFrame  # one row per (dataset, id), indexed by "dataset/id"
    rows: dict[tuple[str, str], dict[str, dict]]  # (dataset, id) -> model -> prediction row
    slice_columns: list[str]
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        models = self.baseline + (f" (baseline) and {self.candidate}" if self.candidate else "")
        lines = [f"{len(self.table)} utterances of {self.table['dataset'].nunique()} dataset(s), models {models}."]
        lines += [f"- {problem}" for problem in self.problems[:MAX_PROBLEMS_SHOWN]]
        if len(self.problems) > MAX_PROBLEMS_SHOWN:
            lines.append(f"- {len(self.problems) - MAX_PROBLEMS_SHOWN} more problems.")
        return "\n".join(lines)

    def slice_choices(self) -> list[str]:
        return [
            f"{column} = {value}"
            for column in self.slice_columns
            for value in sorted(self.table[column].dropna().unique(), key=str)
        ]


def _read_rows(path: Path, problems: list[str]) -> list[dict]:
    """The predictions in the file, in one JSON parse when every line is one (a large eval opens in well under a
    second), else line by line, each bad line reported and skipped."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        problems.append(f"{PREDICTIONS_FILE} ends in the middle of a line (a run still writing, or cut off): skipped")
        data = data[: data.rfind(b"\n") + 1]
    lines = data.decode("utf-8", errors="replace").splitlines()
    try:
        rows = json.loads("[" + ",".join(line for line in lines if line.strip()) + "]")
        if all(isinstance(row, dict) and REQUIRED_KEYS <= row.keys() for row in rows):
            return rows
    except ValueError:
        pass
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not REQUIRED_KEYS <= row.keys():
                raise ValueError("not a prediction")
            rows.append(row)
        except ValueError as error:
            problems.append(f"line {number} is not a prediction ({error}): skipped")
    return rows


def _model_order(folder: Path, rows: list[dict]) -> list[str]:
    """Baseline first: the order of results.json (eval's --model order), else the order models first appear."""
    seen = list(dict.fromkeys(row["model"] for row in rows))
    try:
        results = json.loads((folder / RESULTS_FILE).read_text(encoding="utf-8"))
        listed = list(dict.fromkeys(model for models in results.values() for model in models))
    except (OSError, ValueError, AttributeError):
        listed = []
    return [m for m in listed if m in seen] + [m for m in seen if m not in listed]


def open_eval(folder: Path) -> EvalView:
    """Reads an eval output folder into an utterance table; raises ExploreError when it is not one."""
    path = folder / PREDICTIONS_FILE
    if not path.is_file():
        raise ExploreError(f"{folder.name} is not an eval output: it has no {PREDICTIONS_FILE}")
    problems: list[str] = []
    rows = _read_rows(path, problems)
    if not rows:
        raise ExploreError(
            f"{folder.name}/{PREDICTIONS_FILE} holds no predictions" + (f" ({problems[0]})" if problems else "")
        )
    models = _model_order(folder, rows)
    baseline, candidate = models[0], (models[1] if len(models) > 1 else None)
    by_key: dict[tuple[str, str], dict[str, dict]] = {}
    for row in rows:
        by_key.setdefault((row["dataset"], row["id"]), {})[row["model"]] = row
    firsts = [per_model.get(baseline) or next(iter(per_model.values())) for per_model in by_key.values()]
    fields = [first.get("fields") or {} for first in firsts]
    slice_columns = [column for column in SLICE_FIELDS if any(column in f for f in fields)]
    seconds = np.array([first.get("audio_seconds") or 0.0 for first in firsts], dtype=float)
    columns = {"dataset": [key[0] for key in by_key], "id": [key[1] for key in by_key]}
    columns |= {column: [f.get(column) for f in fields] for column in slice_columns}
    columns |= {"duration": duration_bins(seconds), "seconds": seconds.round(2)}
    for model in models[:2]:
        columns[f"WER {model}"] = np.array(
            [p[model].get("wer", np.nan) if model in p else np.nan for p in by_key.values()]
        )
    if candidate:
        columns["Δ WER"] = (columns[f"WER {candidate}"] - columns[f"WER {baseline}"]).round(2)
    table = pd.DataFrame(columns)
    table.index = table["dataset"] + "/" + table["id"]
    return EvalView(folder, baseline, candidate, table, by_key, [*slice_columns, "duration"], problems)


def filter_table(
    view: EvalView,
    *,
    worse_only: bool = False,
    wer_above: float | None = None,
    slice_value: str | None = None,
    sort_by: str | None = None,
) -> pd.DataFrame:
    """The utterances that pass the filters: the candidate worse than the baseline, the candidate's WER (the
    baseline's when there is one model) above a threshold, one slice value ("column = value"); sorted by a column,
    largest first (default: the candidate's Δ)."""
    table = view.table
    mask = np.ones(len(table), dtype=bool)
    if worse_only and view.candidate:
        mask &= (table["Δ WER"] > 0).to_numpy()
    if wer_above is not None:
        mask &= (table[f"WER {view.candidate or view.baseline}"] > wer_above).to_numpy()
    if slice_value:
        column, _, value = slice_value.partition(" = ")
        if column not in view.slice_columns:
            raise ExploreError(f"no slice column {column!r} in this eval")
        mask &= (table[column] == value).to_numpy()
    chosen = table[mask]
    sort_by = sort_by if sort_by in table.columns else ("Δ WER" if view.candidate else f"WER {view.baseline}")
    return chosen.sort_values(sort_by, ascending=False, kind="stable")


def _clip_audio(row: dict) -> tuple[np.ndarray | None, str]:
    """The clip a prediction row references, decoded, or None and why not."""
    if not row.get("audio"):
        return None, "the eval recorded no file for this clip (its audio came embedded in the dataset)"
    try:
        return load_audio(row["audio"]), ""
    except (AudioError, OSError) as error:
        return None, f"its audio cannot be read: {error}"


@dataclass(frozen=True)
class Utterance:
    """One utterance opened: its texts, diffs against the reference, and its audio or why there is none."""

    key: str
    reference: str
    hypotheses: dict[str, str]  # model -> hypothesis
    diffs: dict[str, list[tuple[str, str | None]]]  # model -> word alignment of reference and hypothesis
    audio: np.ndarray | None
    audio_problem: str


def open_utterance(view: EvalView, key: str) -> Utterance:
    """The details of the utterance `key` ("dataset/id", as the table's index holds it)."""
    dataset, _, clip = key.partition("/")
    per_model = view.rows.get((dataset, clip))
    if per_model is None:
        raise ExploreError(f"{key} is not an utterance of this eval")
    first = next(iter(per_model.values()))
    audio, problem = _clip_audio(first)
    hypotheses = {model: row["hypothesis"] for model, row in per_model.items()}
    diffs = {m: align_words(normalize(first["reference"]), normalize(h)) for m, h in hypotheses.items()}
    return Utterance(key, first["reference"], hypotheses, diffs, audio, problem)


@dataclass
class QueueReport:
    queued: int = 0
    already_queued: int = 0
    test_split: int = 0
    problems: list[str] = field(default_factory=list)

    def message(self) -> str:
        parts = [f"Queued {self.queued} clip(s) for review"]
        if self.already_queued:
            parts.append(f"{self.already_queued} were queued already")
        if self.test_split:
            parts.append(
                f"{self.test_split} are test-split clips: reviewers can correct them, training never uses them"
            )
        text = "; ".join(parts) + "."
        return "\n".join([text, *(f"- {p}" for p in self.problems[:MAX_PROBLEMS_SHOWN])])


def send_to_review(view: EvalView, keys: list[str], store: ReviewStore) -> QueueReport:
    """Queues the utterances `keys` in the review store with both models' hypotheses (the candidate as the
    fine-tuned side) and the dataset's reference; a clip whose audio cannot be read is reported and left out."""
    report = QueueReport()
    fine_tuned = view.candidate or view.baseline
    for key in dict.fromkeys(keys):
        dataset, _, clip = key.partition("/")
        per_model = view.rows.get((dataset, clip))
        if per_model is None:
            report.problems.append(f"{key}: not an utterance of this eval")
            continue
        first = next(iter(per_model.values()))
        if store.has_item(dataset, clip):
            report.already_queued += 1
            continue
        samples, problem = _clip_audio(first)
        if samples is None:
            report.problems.append(f"{key}: {problem}")
            continue
        split = dict(parse_qsl(str(first.get("source", "")).partition("?")[2])).get("split", "")
        ft_row, base_row = per_model.get(fine_tuned, first), per_model.get(view.baseline, first)
        audio_hash, seconds = store.put_audio(samples)
        store.add_items(
            [
                NewItem(
                    audio_hash=audio_hash,
                    duration=seconds,
                    source=dataset,
                    source_id=clip,
                    source_split=split,
                    reference=first["reference"],
                    hypothesis_finetuned=ft_row["hypothesis"],
                    hypothesis_base=base_row["hypothesis"],
                    model_finetuned=ft_row.get("model_id", fine_tuned),
                    model_base=base_row.get("model_id", view.baseline),
                )
            ]
        )
        report.queued += 1
        report.test_split += is_test_split(split)
    return report
