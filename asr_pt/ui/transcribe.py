"""The Transcribe tab: a clip through both models, side by side, with scores and word diffs, and "send to review".

The work is `asr_pt.compare.compare`, which returns plain data: that is what the `/transcribe` endpoint gives back;
this module only wires components and formats that data.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import NamedTuple

import gradio as gr
import soundfile as sf

from asr_pt.audio import AudioError, load_audio
from asr_pt.compare import BASE, FINETUNED, PAIRS, REFERENCE, compare, pair_name
from asr_pt.metrics import PROTOCOLS
from asr_pt.models import DEFAULT_LANGUAGE, ModelLoadError
from asr_pt.review.store import ReviewStore
from asr_pt.ui.diffs import DIFF_COLORS, spaced
from asr_pt.ui.languages import language_choices
from asr_pt.ui.status import TITLES, Models, explain_load_failure, log, status_markdown

try:  # on a ZeroGPU Space the GPU is lent per call, to functions decorated with spaces.GPU
    import spaces
except ImportError:
    spaces = None

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"


def gpu_seconds(audio: str, max_seconds: float) -> int:
    """The GPU time to ask ZeroGPU for: both models on a clip take a fraction of its length, plus warm-up."""
    try:
        seconds = sf.info(audio).duration
    except (sf.SoundFileError, RuntimeError, TypeError):  # the real error is reported by compare()
        seconds = max_seconds
    return math.ceil(30 + min(seconds, max_seconds) / 2)


def make_transcribe(models: Models, max_seconds: float):
    """The `/transcribe` endpoint: audio file, language, context, reference -> `Comparison.to_dict()`."""

    def run(audio: str, language: str, context: str, reference: str) -> dict:
        comparison = compare(
            audio,
            models[FINETUNED],
            models[BASE],
            language=language,
            context=context,
            reference=reference,
            max_seconds=max_seconds,
        )
        return comparison.to_dict()

    if spaces is not None:
        run = spaces.GPU(duration=lambda audio, *_: gpu_seconds(audio, max_seconds))(run)

    def transcribe(audio: str, language: str, context: str, reference: str) -> dict:
        try:
            return run(audio, language, context, reference)
        except (ValueError, ModelLoadError) as error:  # AudioError is a ValueError: bad input, told in its words
            log.info("request refused: %s", error)
            raise gr.Error(str(error)) from error

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
    """What later tabs may build on: the clip, the reference box and the last result."""

    audio: gr.Audio
    reference: gr.Textbox
    result: gr.JSON


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
                label="Context or hotwords (optional)",
                placeholder="names, terms or a sentence about the topic, e.g. Lisboa, Sporting",
            )
            reference = gr.Textbox(
                label="Reference transcript (optional)", placeholder="what was said, to score both models against"
            )
    gr.Examples(
        read_examples(),
        inputs=[audio, language, context, reference],
        label="Examples: Portuguese sentences spoken by espeak-ng, with their text as the reference",
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

    # A result belongs to the clip it came from: "send to review" must never pair it with a newer clip.
    audio.change(lambda: None, None, result, queue=False, api_visibility="private")
    button.click(
        make_transcribe(models, max_seconds),
        inputs=[audio, language, context, reference],
        outputs=result,
        api_name="transcribe",
    ).success(
        lambda value: show(value, models),
        inputs=result,
        outputs=[audio_info, *outputs, scores, *diffs, status],
        queue=False,
        api_visibility="private",
    )
    return TranscribeTab(audio, reference, result)


def queue_for_review(store: ReviewStore, audio: str | None, reference: str, result: dict | None) -> str:
    """Store the Transcribe tab's clip with both hypotheses (and the reference) for reviewers."""
    if not audio or not result or not result.get("runs"):
        raise gr.Error("Transcribe a clip first, then send it to review.")
    runs = result["runs"]
    texts = {side: (runs[side].get("transcript") or {}).get("text") for side in ("finetuned", "base")}
    if None in texts.values():
        raise gr.Error("Both models must have transcribed the clip before it can be reviewed.")
    try:
        samples = load_audio(audio)
    except AudioError as error:
        raise gr.Error(str(error)) from error
    item_id = store.add_item(
        samples,
        reference=reference or "",
        hypothesis_finetuned=texts["finetuned"],
        hypothesis_base=texts["base"],
        model_finetuned=runs["finetuned"]["model_id"],
        model_base=runs["base"]["model_id"],
    )
    return f"Sent to review as item {item_id}. Thank you!"


def send_to_review_button(store: ReviewStore, audio: gr.Audio, reference: gr.Textbox, result: gr.JSON) -> None:
    """The Transcribe tab's "send to review": under the results, for any visitor."""
    with gr.Row():
        button = gr.Button("Send to review", size="sm", elem_id="send-to-review")
        message = gr.Markdown("Stores this clip and both transcripts for our reviewers to correct.")
    button.click(
        lambda a, r, res: queue_for_review(store, a, r, res),
        [audio, reference, result],
        message,
        api_visibility="private",
    )
