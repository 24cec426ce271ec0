"""The evaluation written up for people: the model card's table, every score, the worst utterances and a plot."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from asr_pt.markdown import table
from eval.confidence import ConfidenceScores
from eval.errors import ErrorKinds, UtteranceChanges
from eval.scores import Comparison
from eval.slices import SliceScore

REPORT_FILE = "report.md"
PLOT_FILE = "report.png"
SLICES_PLOT_FILE = "slices.png"
CONFIDENCE_PLOT_FILE = "confidence.png"
WORST_COUNT = 5


def _held_out(results: dict, comparison: Comparison) -> str:
    seen = [
        f"{model} was {' and '.join(role.replace('_', ' ') for role in entry['seen_in_training'])} it"
        for model in (comparison.baseline, comparison.candidate)
        if (entry := results[comparison.dataset][model])["seen_in_training"]
    ]
    return "**no**: " + "; ".join(seen) if seen else "yes"


def card_table(comparisons: Sequence[Comparison], results: dict) -> str:
    """The model card's table for one baseline and one candidate, a row per dataset.

    Δ is candidate minus baseline in WER points (negative is better); the interval is a paired bootstrap over
    utterances; "held out" is "no" when a checkpoint was selected or trained on the dataset.
    """
    baseline, candidate = comparisons[0].baseline, comparisons[0].candidate
    rows = [
        [
            c.dataset,
            c.samples,
            f"{c.baseline_wer:.2f}",
            f"{c.candidate_wer:.2f}",
            f"{c.delta:+.2f}",
            "n/a" if math.isnan(c.relative) else f"{c.relative:+.1f}%",
            f"[{c.ci95[0]:+.2f}, {c.ci95[1]:+.2f}]" + (" *" if c.significant else ""),
            f"{c.baseline_cer:.2f} → {c.candidate_cer:.2f}",
            _held_out(results, c),
        ]
        for c in comparisons
    ]
    header = ["Dataset", "Samples", f"{baseline} WER", f"{candidate} WER", "Δ WER", "Relative Δ", "95% CI of Δ"]
    return table([*header, f"CER {baseline} → {candidate}", "Held out"], rows)


def results_table(results: dict) -> str:
    """Every model on every dataset in both protocols, with speed."""
    rows = [
        [
            dataset,
            model,
            s["n"],
            f"{s['wer']:.2f}",
            f"{s['cer']:.2f}",
            f"{s['wer_normalized']:.2f}",
            f"{s['cer_normalized']:.2f}",
            f"[{s['wer_ci95'][0]:.2f}, {s['wer_ci95'][1]:.2f}]",
            f"{s['audio_seconds'] / 60:.1f}",
            "n/a" if s["rtfx"] is None else f"{s['rtfx']:.1f}",
            s["truncated"],
        ]
        for dataset, models in results.items()
        for model, s in models.items()
    ]
    header = ["Dataset", "Model", "Samples", "WER", "CER", "WER (normalised)", "CER (normalised)", "95% CI of WER"]
    return table([*header, "Audio (min)", "RTFx", "Truncated"], rows)


def summary(results: dict, comparisons: Sequence[Comparison]) -> str:
    """The card's table for each candidate against the baseline, then all scores: what the terminal shows."""
    pairs: dict[tuple[str, str], list[Comparison]] = {}
    for comparison in comparisons:
        pairs.setdefault((comparison.baseline, comparison.candidate), []).append(comparison)
    parts = [
        f"### {baseline} → {candidate}\n\n{card_table(group, results)}"
        for (baseline, candidate), group in pairs.items()
    ]
    return "\n\n".join([*parts, f"### All scores\n\n{results_table(results)}"])


def worst_utterances(rows: Sequence[dict], count: int = WORST_COUNT) -> list[dict]:
    """The utterances with the highest WER; among equals, the longest (most word errors) first."""
    return sorted(rows, key=lambda r: (r["wer"], len(r["reference"].split())), reverse=True)[:count]


def notes(results: dict, skipped_audio: dict[str, dict[str, str]]) -> list[str]:
    """What a reader must know beside the numbers: dropped utterances, skipped clips, data that is not held out."""
    notes = []
    for dataset, models in results.items():
        first = next(iter(models.values()))
        if first["empty_references"]:
            notes.append(f"- {dataset}: {first['empty_references']} utterances with an empty reference were dropped.")
        for clip, reason in list(skipped_audio.get(dataset, {}).items())[:WORST_COUNT]:
            notes.append(f"- {dataset}: skipped `{clip}`, its audio cannot be used: {reason}")
        if len(skipped_audio.get(dataset, {})) > WORST_COUNT:
            notes.append(f"- {dataset}: {len(skipped_audio[dataset])} clips skipped in all.")
        for model, scores in models.items():
            if not scores["held_out"]:
                roles = " and ".join(role.replace("_", " ") for role in scores["seen_in_training"])
                notes.append(f"- **{dataset} is not held out for {model}**: the checkpoint was {roles} it.")
            if scores["truncated"]:
                cut = scores["truncated"]
                notes.append(f"- {dataset}, {model}: {cut} transcripts hit --max-new-tokens and may be cut short.")
    return notes


def _interval(low_high: tuple[float, float], signed: bool = False) -> str:
    return f"[{low_high[0]:+.2f}, {low_high[1]:+.2f}]" if signed else f"[{low_high[0]:.2f}, {low_high[1]:.2f}]"


def slices_table(slices: Sequence[SliceScore]) -> str:
    """One dataset column: each value's samples, every model's WER with its interval, each candidate's Δ."""
    models = list(slices[0].wer)
    candidates = list(slices[0].delta)
    header = ["Value", "Samples", *(f"{m} WER [95% CI]" for m in models), *(f"Δ {c} [95% CI]" for c in candidates)]
    rows = [
        [
            s.value,
            s.samples,
            *(f"{s.wer[m]:.2f} {_interval(s.wer_ci95[m])}" for m in models),
            *(
                f"{s.delta[c]:+.2f} {_interval(s.delta_ci95[c], signed=True)}" + (" *" if s.significant[c] else "")
                for c in candidates
            ),
        ]
        for s in slices
    ]
    return table(header, rows)


def errors_tables(kinds: Sequence[ErrorKinds], changes: Sequence[UtteranceChanges]) -> list[str]:
    """Substitutions, insertions and deletions per model, the most frequent substitutions, and utterance by utterance
    whether each candidate did better than the baseline, with examples."""
    counts = [[k.dataset, k.model, k.substitutions, k.insertions, k.deletions, k.reference_words] for k in kinds]
    parts = [table(["Dataset", "Model", "Substitutions", "Insertions", "Deletions", "Reference words"], counts)]
    for k in kinds:
        shown = [[old, new, times] for old, new, times in k.top_substitutions]
        if shown:
            parts.append(
                f"#### Most frequent substitutions · {k.dataset} · {k.model}\n\n"
                + table(["Reference", "Hypothesis", "Times"], shown)
            )
    for c in changes:
        parts.append(
            f"#### {c.dataset}: {c.candidate} against {c.baseline}, utterance by utterance\n\n"
            f"Better on {c.better}, worse on {c.worse}, the same on {c.same} (word errors per utterance, card "
            "protocol)."
        )
        examples = [
            [
                kind,
                e["id"],
                e["reference"],
                e["baseline"],
                e["candidate"],
                f"{e['baseline_errors']} → {e['candidate_errors']}",
            ]
            for kind in ("better", "worse", "same")
            for e in c.examples.get(kind, [])
        ]
        if examples:
            parts.append(table(["", "Id", "Reference", c.baseline, c.candidate, "Word errors"], examples))
    return parts


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def confidence_table(confidences: Sequence[ConfidenceScores]) -> str:
    """How well each model's word confidence predicts its errors."""
    threshold = confidences[0].threshold
    rows = [
        [
            c.dataset,
            c.model,
            c.words,
            c.doubtful,
            _percent(c.wrong_confident),
            _percent(c.wrong_doubtful),
            "n/a" if c.roc_auc is None else f"{c.roc_auc:.3f}",
        ]
        for c in confidences
    ]
    header = ["Dataset", "Model", "Words", f"Doubtful (< {threshold:g})", "% wrong, confident", "% wrong, doubtful"]
    return table([*header, "ROC AUC"], rows)


def plot_confidence(confidences: Sequence[ConfidenceScores], path: str | Path) -> None:
    """Reliability: per confidence bin, the share of words that are right against their mean confidence."""
    datasets = list(dict.fromkeys(c.dataset for c in confidences))
    figure = Figure(figsize=(4.2 * len(datasets), 4.0), layout="constrained")
    for axes, dataset in zip(figure.subplots(1, len(datasets), squeeze=False)[0], datasets, strict=True):
        axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
        for c in (c for c in confidences if c.dataset == dataset):
            axes.plot([b["confidence"] for b in c.bins], [b["right"] for b in c.bins], marker="o", label=c.model)
        axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="word confidence (bin mean)", ylabel="share of words right")
        axes.set_title(dataset, fontsize=9)
    figure.legend(*figure.axes[0].get_legend_handles_labels(), loc="outside upper center", ncols=3)
    figure.savefig(path, dpi=110)


def plot_slices(slices: Sequence[SliceScore], path: str | Path) -> None:
    """WER per slice value (bars per model, 95% intervals), one panel per dataset and column."""
    panels: dict[tuple[str, str], list[SliceScore]] = {}
    for s in slices:
        panels.setdefault((s.dataset, s.column), []).append(s)
    models = list(slices[0].wer)
    width = 0.8 / len(models)
    figure = Figure(figsize=(8.0, 2.8 * len(panels)), layout="constrained")
    for axes, ((dataset, column), group) in zip(
        figure.subplots(len(panels), 1, squeeze=False)[:, 0], panels.items(), strict=True
    ):
        for index, model in enumerate(models):
            wers = [s.wer[model] for s in group]
            errors = [
                [w - s.wer_ci95[model][0] for w, s in zip(wers, group, strict=True)],
                [s.wer_ci95[model][1] - w for w, s in zip(wers, group, strict=True)],
            ]
            positions = [i + (index - (len(models) - 1) / 2) * width for i in range(len(group))]
            axes.bar(positions, wers, width, yerr=errors, capsize=3, label=model)
        axes.set_xticks(range(len(group)), [f"{s.value}\n(n={s.samples})" for s in group], fontsize=8)
        axes.set_title(f"{dataset} · {column}", fontsize=9)
        axes.set_ylabel("WER (%)")
    figure.legend(*figure.axes[0].get_legend_handles_labels(), loc="outside upper center", ncols=len(models))
    figure.savefig(path, dpi=110)


def plot(results: dict, path: str | Path) -> None:
    """WER per dataset (groups) and model (bars) with each model's 95% bootstrap interval."""
    datasets = list(results)
    models = list(dict.fromkeys(model for scores in results.values() for model in scores))
    width = 0.8 / len(models)
    figure = Figure(figsize=(max(5.0, 1.6 * len(datasets) * len(models)), 4.0), layout="constrained")
    axes = figure.subplots()
    for index, model in enumerate(models):
        present = [d for d in datasets if model in results[d]]
        wers = [results[d][model]["wer"] for d in present]
        errors = [
            [wer - results[d][model]["wer_ci95"][0] for d, wer in zip(present, wers, strict=True)],
            [results[d][model]["wer_ci95"][1] - wer for d, wer in zip(present, wers, strict=True)],
        ]
        positions = [datasets.index(d) + (index - (len(models) - 1) / 2) * width for d in present]
        bars = axes.bar(positions, wers, width, yerr=errors, capsize=4, label=model)
        axes.bar_label(bars, labels=[f"{w:.2f}" for w in wers], padding=2, fontsize=8)
    axes.set_xticks(range(len(datasets)), datasets)
    axes.set_ylabel("WER (%), card protocol")
    figure.legend(loc="outside upper center", ncols=len(models))
    figure.savefig(path, dpi=120)


def write_report(
    output_dir: str | Path,
    results: dict,
    comparisons: Sequence[Comparison],
    rows: dict[tuple[str, str], list[dict]],
    skipped_audio: dict[str, dict[str, str]],
    resamples: int,
    seed: int,
    slices: Sequence[SliceScore] = (),
    kinds: Sequence[ErrorKinds] = (),
    changes: Sequence[UtteranceChanges] = (),
    confidences: Sequence[ConfidenceScores] = (),
) -> str:
    """Writes `report.md`, `report.png` and (with slices) `slices.png`, (with confidences) `confidence.png` into
    `output_dir`; returns the markdown."""
    output = Path(output_dir)
    worst = []
    for (dataset, model), model_rows in rows.items():
        shown = [[r["id"], f"{r['wer']:.2f}", r["reference"], r["hypothesis"]] for r in worst_utterances(model_rows)]
        worst.append(f"### {dataset} · {model}\n\n{table(['Id', 'WER', 'Reference', 'Hypothesis'], shown)}")
    remarks = notes(results, skipped_audio)
    by_column: dict[tuple[str, str], list[SliceScore]] = {}
    for s in slices:
        by_column.setdefault((s.dataset, s.column), []).append(s)
    slice_sections = [
        f"### {dataset} · by {column}\n\n{slices_table(group)}" for (dataset, column), group in by_column.items()
    ]
    sections = [
        "# Evaluation",
        "Protocol of the model card, as its author's code computes it: references in written form "
        "(`asr_pt.text.written_form`), hypotheses the greedy `generate` output decoded with special tokens skipped "
        "and stripped, no Unicode normalisation; corpus-level WER and CER with jiwer, x100. Normalised scores are "
        "the Open ASR Leaderboard's Portuguese protocol (its multilingual normaliser: NFKC, marks, symbols and "
        "punctuation to spaces; numbers spelt out; compound words aligned; kaldialign's WER with compounds merged). "
        "Intervals: 95% "
        f"percentile bootstrap over utterances, {resamples} resamples, seed {seed}, paired for Δ (* marks an "
        "interval that leaves out 0). RTFx: audio seconds / transcription seconds after a warm-up batch.",
        "## Results",
        summary(results, comparisons),
        *(["## Notes", "\n".join(remarks)] if remarks else []),
        *(["## Slices", *slice_sections, f"![WER per slice]({SLICES_PLOT_FILE})"] if slices else []),
        *(["## Errors", *errors_tables(kinds, changes)] if kinds else []),
        *(
            [
                "## Confidence",
                "How well each model's word confidence (the product of its tokens' probabilities) predicts its "
                "errors: a word is wrong when the card-protocol alignment substitutes or inserts it; the ROC AUC is "
                "the chance that a right word is more confident than a wrong one (0.5: no better than chance).",
                confidence_table(confidences),
                f"![Reliability of word confidence]({CONFIDENCE_PLOT_FILE})",
            ]
            if confidences
            else []
        ),
        "## Worst utterances",
        *worst,
        f"![WER per model and dataset]({PLOT_FILE})",
    ]
    markdown = "\n\n".join(sections) + "\n"
    (output / REPORT_FILE).write_text(markdown, encoding="utf-8")
    plot(results, output / PLOT_FILE)
    if slices:
        plot_slices(slices, output / SLICES_PLOT_FILE)
    if confidences:
        plot_confidence(confidences, output / CONFIDENCE_PLOT_FILE)
    return markdown
