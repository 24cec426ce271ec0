"""The Transcribe tab: a clip through both models, side by side, with scores and word diffs, and "send to review".

The work is `asr_pt.compare.compare`, which returns plain data: that is what the `/transcribe` endpoint gives back;
this module only wires components and formats that data.
"""

from __future__ import annotations

import csv
from collections.abc import Container
from pathlib import Path
from typing import NamedTuple

import gradio as gr
import soundfile as sf

from asr_pt.audio import Audio, duration, to_pcm16
from asr_pt.compare import (
    BASE,
    FINETUNED,
    MAX_CONTEXT_CHARS,
    MAX_REFERENCE_CHARS,
    PAIRS,
    REFERENCE,
    Comparison,
    compare,
    pair_name,
)
from asr_pt.metrics import PROTOCOLS
from asr_pt.models import DEFAULT_LANGUAGE, ModelLoadError
from asr_pt.ui.diffs import DIFF_COLORS, spaced
from asr_pt.ui.gpu import models_gpu_seconds, on_gpu
from asr_pt.ui.languages import language_choices
from asr_pt.ui.send_to_review import LAST_CLIP_SECONDS, LastClip
from asr_pt.ui.status import TITLES, Models, explain_load_failure, log, status_markdown
from asr_pt.ui.uploads import RecentUploads

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"


def gpu_seconds(clip: Audio, language: str, context: str, reference: str) -> int:
    """The GPU time to ask ZeroGPU for a comparison: the clip's through both models (the texts cost nothing next to
    the audio)."""
    return models_gpu_seconds(duration(clip.samples))


def clip_seconds(audio: str | None) -> float | None:
    """A clip's length from its header, or None when it cannot be read (the real error is reported by compare())."""
    try:
        return sf.info(audio).duration
    except (sf.SoundFileError, RuntimeError, TypeError):
        return None


def wait_markdown(models: Models, audio: str | None) -> str:
    """Before a visitor waits on a CPU: about how long their clip will take through both models."""
    seconds = clip_seconds(audio)
    estimate = models.wait_estimate(seconds) if seconds else None
    if estimate is None:
        return ""
    return (
        f"Audio: **{seconds:.1f} s**. On this server's CPU both models should take about "
        f"**{seconds_words(round(estimate))}** for it (from the real-time factor measured here)."
    )


def refuse(error: Exception) -> gr.Error:
    """A refused request: one line in the log and the library's words for the visitor, no traceback."""
    log.info("request refused: %s", error)
    return gr.Error(str(error), print_exception=False)


def make_transcribe(models: Models, max_seconds: float, kept: Container[str] = ()):
    """The `/transcribe` endpoint: audio file, language, context, reference -> `Comparison.to_dict()`, and the
    session's `LastClip` (a gr.State, not part of the API). Uploads are deleted once read; `kept` are not."""
    uploads = RecentUploads()

    def run(clip: Audio, language: str, context: str, reference: str) -> Comparison:
        try:
            return compare(
                clip, models[FINETUNED], models[BASE], language=language, context=context, reference=reference
            )
        except (ValueError, ModelLoadError) as error:  # AudioError is a ValueError: bad input, told in its words
            raise refuse(error) from error  # a gr.Error reaches the page as it is, from a GPU worker too

    run = on_gpu(run, gpu_seconds, models.zero_gpu, list(models.by_side.values()))

    def transcribe(
        audio: str | None,
        language: str = DEFAULT_LANGUAGE,
        context: str = "",
        reference: str = "",
    ) -> tuple[dict, LastClip]:
        try:
            clip = uploads.read(audio, max_seconds, kept)
        except ValueError as error:  # AudioError
            raise refuse(error) from error
        comparison = run(clip, language, context, reference)
        runs = comparison.runs
        kept_clip = LastClip(
            pcm=to_pcm16(clip.samples),
            reference=comparison.reference,
            texts={side: run.transcript.text if run.transcript else None for side, run in runs.items()},
            model_ids={side: run.model_id for side, run in runs.items()},
        )
        return comparison.to_dict(), kept_clip

    return transcribe


def seconds_words(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def run_markdown(side: str, run: dict) -> str:
    """One model's details under its transcript: language, time, real-time factor and warnings."""
    if run["error"]:
        return f"⚠️ {explain_load_failure(side, run['error'])}"
    transcript = run["transcript"]
    lines = [
        f"Language **{transcript['language'] or 'none detected'}** · time **{transcript['seconds']:.2f} s** · "
        f"real-time factor **{transcript['rtf']:.2f}**"
    ]
    return "\n\n".join(lines + [f"⚠️ {warning}" for warning in run["warnings"]])


def scores_markdown(result: dict) -> str:
    """The error rates as a table: one row per pair of texts, WER and CER in both protocols."""
    rows = [
        "| | WER % written | CER % written | WER % normalised | CER % normalised |",
        "| :-- | --: | --: | --: | --: |",
    ]
    for (hypothesis, reference), pair in zip(PAIRS, PAIR_NAMES, strict=True):
        if pair in result["scores"]:
            scores = result["scores"][pair]
            cells = [f"{scores[protocol][rate]:.1f}" for protocol in PROTOCOLS for rate in ("wer", "cer")]
            rows.append(f"| {TITLES[hypothesis]} vs {TITLES[reference].lower()} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


PAIR_NAMES = [pair_name(hypothesis, reference) for hypothesis, reference in PAIRS]


def show(result: dict, models: Models) -> tuple:
    """Fills the page from the endpoint's result."""
    runs = result["runs"]
    notes = "; ".join(result["audio_notes"])
    audio_line = f"Audio: **{result['audio_seconds']:.1f} s**" + (f" ({notes})" if notes else "")
    texts = [(runs[side]["transcript"] or {}).get("text", "") for side in (FINETUNED, BASE)]
    diffs = [spaced(result["diffs"].get(pair, [])) or absent_diff(pair, result) for pair in PAIR_NAMES]
    return (
        audio_line,
        texts[0],
        run_markdown(FINETUNED, runs[FINETUNED]),
        texts[1],
        run_markdown(BASE, runs[BASE]),
        scores_markdown(result),
        *diffs,
        status_markdown(models),
    )


def absent_diff(pair: str, result: dict) -> list[tuple[str, None]]:
    """Why a diff is empty. (The diffs stay visible: gradio 6.17 hangs the browser when several HighlightedText
    components are shown after starting hidden.)"""
    if pair in result["diffs"]:
        return [("both texts are empty once normalised", None)]
    if pair.endswith(REFERENCE) and not result["reference"]:
        return [("type a reference transcript to compare with it", None)]
    return [("a model could not be loaded", None)]


def read_examples() -> list[list[str]]:
    """The clips in examples/ with their sentences as references (made by `python -m scripts.make_examples`)."""
    with open(EXAMPLES_DIR / "metadata.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [[str(EXAMPLES_DIR / row["file_name"]), DEFAULT_LANGUAGE, "", row["sentence"]] for row in rows]


class TranscribeTab(NamedTuple):
    """What later tabs may build on: the clip, the last result as shown, and the last comparison on the server."""

    audio: gr.Audio
    result: gr.JSON
    last: gr.State


def transcribe_tab(models: Models, status: gr.Markdown, max_seconds: float) -> TranscribeTab:
    limit = seconds_words(max_seconds)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            audio = gr.Audio(
                sources=["microphone", "upload"],
                type="filepath",
                label=f"Portuguese speech: record or upload (up to {limit})",
                elem_id="audio-input",
            )
            button = gr.Button("Transcribe with both models", variant="primary")
        with gr.Column(scale=2):
            language = gr.Dropdown(language_choices(), value=DEFAULT_LANGUAGE, label="Language")
            context = gr.Textbox(
                "",
                label="Context or hotwords (optional)",
                placeholder="names, terms or a sentence about the topic, e.g. Lisboa, Sporting",
                max_length=MAX_CONTEXT_CHARS,
            )
            reference = gr.Textbox(
                "",
                label="Reference transcript (optional)",
                placeholder="what was said, to score both models against",
                max_length=MAX_REFERENCE_CHARS,
            )
    gr.Examples(
        read_examples(),
        inputs=[audio, language, context, reference],
        label="Examples: Portuguese sentences spoken by espeak-ng, with their text as the reference",
        api_visibility="private",
    )

    audio_info = gr.Markdown()
    with gr.Row(equal_height=True):
        outputs = []
        for side in (FINETUNED, BASE):
            with gr.Column():
                text = gr.Textbox(
                    label=f"{TITLES[side]} · {models[side].model_id}",
                    lines=3,
                    interactive=False,
                    buttons=["copy"],
                    elem_classes="model-output",
                    elem_id=f"{side}-text",
                )
                outputs += [text, gr.Markdown(elem_id=f"{side}-info")]
    gr.Markdown("### Word and character error rates")
    scores = gr.Markdown("Transcribe a clip to see how far apart the models are.", elem_id="scores")
    gr.Markdown(
        "*Written*: the model card's protocol, where case and punctuation count. *Normalised*: the Open ASR "
        "Leaderboard's, where only the words count (accents kept). Between the models, the fine-tuned text is "
        "the reference, so their WER measures how much they disagree."
    )
    diff_labels = {
        pair_name(BASE, FINETUNED): "Word diff: zero-shot base against fine-tuned",
        pair_name(FINETUNED, REFERENCE): "Word diff: fine-tuned against the reference",
        pair_name(BASE, REFERENCE): "Word diff: zero-shot base against the reference",
    }
    diffs = [
        gr.HighlightedText(label=diff_labels[pair], color_map=DIFF_COLORS, show_legend=True, elem_id=f"diff-{pair}")
        for pair in PAIR_NAMES
    ]
    gr.Markdown(
        "Diffs compare normalised words: a *substitution* shows `expected→heard`, an *insertion* a word only the "
        "second text has, a *deletion* a word it lacks."
    )
    with gr.Accordion("API result (what `/transcribe` returns)", open=False):
        result = gr.JSON(label="result")
    last = gr.State(None, time_to_live=LAST_CLIP_SECONDS)

    def forget_clip(path: str | None) -> tuple[None, None, str]:
        """A result belongs to the clip it came from: "send to review" must never pair it with a newer clip. On a
        CPU, the new clip's line says about how long it will take."""
        return None, None, wait_markdown(models, path)

    def show_result(value: dict) -> tuple:
        return show(value, models)

    audio.change(forget_clip, audio, [result, last, audio_info], queue=False, api_visibility="private")
    button.click(
        make_transcribe(models, max_seconds, kept=audio.keep_in_cache),
        inputs=[audio, language, context, reference],
        outputs=[result, last],
        api_name="transcribe",
    ).success(
        show_result,
        inputs=result,
        outputs=[audio_info, *outputs, scores, *diffs, status],
        queue=False,
        api_visibility="private",
    )
    return TranscribeTab(audio, result, last)
