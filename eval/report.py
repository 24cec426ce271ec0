"""The evaluation written up for people: the model card's table, every score, the worst utterances and a plot."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from asr_pt.markdown import table
from eval.scores import Comparison

REPORT_FILE = "report.md"
PLOT_FILE = "report.png"
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
) -> str:
    """Writes `report.md` and `report.png` into `output_dir`; returns the markdown."""
    output = Path(output_dir)
    worst = []
    for (dataset, model), model_rows in rows.items():
        shown = [[r["id"], f"{r['wer']:.2f}", r["reference"], r["hypothesis"]] for r in worst_utterances(model_rows)]
        worst.append(f"### {dataset} · {model}\n\n{table(['Id', 'WER', 'Reference', 'Hypothesis'], shown)}")
    remarks = notes(results, skipped_audio)
    sections = [
        "# Evaluation",
        "Protocol of the model card: references in written form (`asr_pt.text.written_form`), hypotheses as the "
        "model wrote them (stripped), greedy decoding; corpus-level WER and CER with jiwer, x100. Normalised scores "
        "put both sides through the Open ASR Leaderboard's multilingual normaliser (diacritics kept). Intervals: 95% "
        f"percentile bootstrap over utterances, {resamples} resamples, seed {seed}, paired for Δ (* marks an "
        "interval that leaves out 0). RTFx: audio seconds / transcription seconds after a warm-up batch.",
        "## Results",
        summary(results, comparisons),
        *(["## Notes", "\n".join(remarks)] if remarks else []),
        "## Worst utterances",
        *worst,
        f"![WER per model and dataset]({PLOT_FILE})",
    ]
    markdown = "\n\n".join(sections) + "\n"
    (output / REPORT_FILE).write_text(markdown, encoding="utf-8")
    plot(results, output / PLOT_FILE)
    return markdown
