"""The Space: Qwen3-ASR-1.7B-PT and its zero-shot base, side by side, on Portuguese speech you record or upload.

A thin layer over `asr_pt`: `asr_pt.compare.compare` does the work and returns plain data, which is what the
`/transcribe` API endpoint gives back; the functions here only load the models, wire components and format.
Configuration comes from the environment (see README's Demo section); `python app.py` starts it.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import threading
from pathlib import Path
from typing import NamedTuple

import gradio as gr
import soundfile as sf

from asr_pt.compare import BASE, FINETUNED, PAIRS, REFERENCE, compare, pair_name
from asr_pt.hub_sync import start_hub_sync
from asr_pt.metrics import PROTOCOLS
from asr_pt.models import (
    AUTO_LANGUAGE,
    BASE_MODEL,
    DEFAULT_LANGUAGE,
    FINETUNED_MODEL,
    ASRModel,
    ModelLoadError,
    supported_languages,
)
from asr_pt.store import ReviewStore
from review_ui import KEYBOARD_HEAD, ReviewAccess, review_tabs, send_to_review_button

try:  # on a ZeroGPU Space the GPU is lent per call, to functions decorated with spaces.GPU
    import spaces
except ImportError:
    spaces = None

log = logging.getLogger("asr_pt.app")

MODEL_ENV = {FINETUNED: "ASR_PT_FINETUNED_MODEL", BASE: "ASR_PT_BASE_MODEL"}
DEFAULT_MODELS = {FINETUNED: FINETUNED_MODEL, BASE: BASE_MODEL}
TITLES = {FINETUNED: "Fine-tuned", BASE: "Zero-shot base", REFERENCE: "reference"}
MAX_SECONDS = float(os.environ.get("ASR_PT_DEMO_MAX_SECONDS", 180))
MAX_NEW_TOKENS = int(os.environ.get("ASR_PT_MAX_NEW_TOKENS", 512))
# Two requests at once: one can run the fine-tuned model while the other runs the base; each model runs one at a time.
CONCURRENCY = int(os.environ.get("ASR_PT_DEMO_CONCURRENCY", 2))
# Room for a clip of MAX_SECONDS as 48 kHz stereo 32-bit WAV, the largest a recorder commonly writes.
MAX_FILE_BYTES_PER_SECOND = 48000 * 2 * 4
EXAMPLES_DIR = Path(__file__).parent / "examples"
DIFF_COLORS = {"substitution": "#f59e0b", "insertion": "#10b981", "deletion": "#ef4444"}
CSS = """
.model-output textarea { font-size: 1.1rem !important; line-height: 1.5 !important; }
#status p { margin: 0.15em 0; }
"""


class Models:
    """The page's two models, loaded in a background thread from start, so the page is up while they load."""

    def __init__(self, finetuned: ASRModel, base: ASRModel):
        self.by_side = {FINETUNED: finetuned, BASE: base}
        self.errors: dict[str, str] = {}

    @classmethod
    def from_env(cls) -> Models:
        ids = [os.environ.get(MODEL_ENV[side], DEFAULT_MODELS[side]) for side in (FINETUNED, BASE)]
        return cls(*(ASRModel(model_id, max_new_tokens=MAX_NEW_TOKENS) for model_id in ids))

    def __getitem__(self, side: str) -> ASRModel:
        return self.by_side[side]

    def load_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.load, name="load-models", daemon=True)
        thread.start()
        return thread

    def load(self) -> None:
        for side, model in self.by_side.items():
            try:
                model.load()
                log.info("%s model ready: %s", TITLES[side], model.model_id)
            except ModelLoadError as error:
                self.errors[side] = explain_load_failure(side, error)
                log.error("%s model unavailable. %s", TITLES[side], self.errors[side])

    def status(self) -> dict[str, dict[str, str]]:
        """Per side: the model id and its state, "ready", "loading" or "unavailable" (with the reason)."""
        states = {}
        for side, model in self.by_side.items():
            state = "ready" if model.loaded else "unavailable" if side in self.errors else "loading"
            states[side] = {"model_id": model.model_id, "state": state, "message": self.errors.get(side, "")}
        return states

    @property
    def settled(self) -> bool:
        return all(model.loaded or side in self.errors for side, model in self.by_side.items())


def explain_load_failure(side: str, error: Exception) -> str:
    return f"{error} To use a checkpoint folder, start the app with {MODEL_ENV[side]}=/path/to/folder."


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


def status_markdown(models: Models) -> str:
    icons = {"ready": "✅", "loading": "⏳", "unavailable": "⚠️"}
    lines = []
    for side, status in models.status().items():
        line = f"{icons[status['state']]} **{TITLES[side]}** `{status['model_id']}`: {status['state']}"
        lines.append(line + (f". {status['message']}" if status["message"] else ""))
    return "\n\n".join(lines)


def seconds_words(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def run_markdown(run: dict) -> str:
    """One model's details under its transcript: language, time, real-time factor and warnings."""
    if run["error"]:
        return f"⚠️ {run['error']}"
    transcript = run["transcript"]
    lines = [
        f"Language **{transcript['language'] or 'none detected'}** · time **{transcript['seconds']:.2f} s** · "
        f"real-time factor **{transcript['rtf']:.2f}**"
    ]
    return "\n\n".join(lines + [f"⚠️ {warning}" for warning in run["warnings"]])


def score_rows(result: dict) -> list[list]:
    rows = []
    for (hypothesis, reference), pair in zip(PAIRS, PAIR_NAMES, strict=True):
        if pair in result["scores"]:
            scores = result["scores"][pair]
            label = f"{TITLES[hypothesis]} vs {TITLES[reference].lower()}"
            rows.append([label] + [round(scores[p][m], 1) for p in PROTOCOLS for m in ("wer", "cer")])
    return rows


PAIR_NAMES = [pair_name(hypothesis, reference) for hypothesis, reference in PAIRS]
SCORE_HEADERS = ["", "WER % (written)", "CER % (written)", "WER % (normalised)", "CER % (normalised)"]


def show(result: dict, models: Models) -> tuple:
    """Fills the page from the endpoint's result."""
    runs = result["runs"]
    notes = "; ".join(result["audio_notes"])
    audio_line = f"Audio: **{result['audio_seconds']:.1f} s**" + (f" ({notes})" if notes else "")
    texts = [(runs[side]["transcript"] or {}).get("text", "") for side in (FINETUNED, BASE)]
    diffs = [
        [tuple(item) for item in result["diffs"].get(pair, [])] or absent_diff(pair, result) for pair in PAIR_NAMES
    ]
    return (
        audio_line,
        texts[0],
        run_markdown(runs[FINETUNED]),
        texts[1],
        run_markdown(runs[BASE]),
        score_rows(result),
        *diffs,
        status_markdown(models),
    )


def absent_diff(pair: str, result: dict) -> list[tuple[str, None]]:
    """Why a diff is empty. (The diffs stay visible: gradio 6.17 hangs the browser when several HighlightedText
    components are shown after starting hidden.)"""
    if pair not in result["diffs"]:
        return [("needs a reference transcript and both models" if REFERENCE in pair else "needs both models", None)]
    return [("both texts are empty once normalised", None)]


def read_examples() -> list[list[str]]:
    """The clips in examples/ with their sentences as references (made by scripts/make_examples.py)."""
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
            languages = [("Portuguese", DEFAULT_LANGUAGE), ("Automatic detection", AUTO_LANGUAGE)] + [
                (name, name) for name in supported_languages() if name != DEFAULT_LANGUAGE
            ]
            language = gr.Dropdown(languages, value=DEFAULT_LANGUAGE, label="Language")
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
    scores = gr.Dataframe(
        headers=SCORE_HEADERS,
        datatype=["str", "number", "number", "number", "number"],
        label="Word and character error rates",
        interactive=False,
        elem_id="scores",
    )
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


def build_demo(
    models: Models,
    *,
    max_seconds: float = MAX_SECONDS,
    store: ReviewStore | None = None,
    access: ReviewAccess | None = None,
) -> gr.Blocks:
    """The page; with a review store it also has "send to review" and the Review and Data tabs."""
    with gr.Blocks(title="Qwen3-ASR Portuguese: fine-tuned vs zero-shot") as demo:
        gr.Markdown(
            "# 🎙️ Qwen3-ASR Portuguese: fine-tuned vs zero-shot\n"
            f"Speak or upload Portuguese and compare [`{FINETUNED_MODEL}`](https://huggingface.co/{FINETUNED_MODEL}), "
            f"fine-tuned on Portuguese, with its zero-shot base [`{BASE_MODEL}`](https://huggingface.co/{BASE_MODEL}),"
            " side by side, with error rates and a word diff."
        )
        status = gr.Markdown(status_markdown(models), elem_id="status")
        with gr.Tabs():
            with gr.Tab("Transcribe"):
                transcribed = transcribe_tab(models, status, max_seconds)
                if store is not None:
                    send_to_review_button(store, *transcribed)
            if store is not None:
                review_tabs(demo, store, access or ReviewAccess.from_env())

        timer = gr.Timer(1.0)
        refresh = [status, timer]
        demo.load(lambda: (status_markdown(models), gr.Timer(active=not models.settled)), outputs=refresh, queue=False)
        timer.tick(lambda: (status_markdown(models), gr.Timer(active=not models.settled)), outputs=refresh, queue=False)
        gr.api(models.status, api_name="status", queue=False)
    return demo.queue(default_concurrency_limit=CONCURRENCY)


def launch(demo: gr.Blocks, *, max_seconds: float = MAX_SECONDS, store: ReviewStore | None = None, **kwargs):
    """`demo.launch` with the page's look, the review keyboard shortcuts and an upload limit that fits the longest
    clip accepted; the review store's clips may be served wherever its data folder is."""
    max_file_size = math.ceil(max_seconds * MAX_FILE_BYTES_PER_SECOND)
    theme = gr.themes.Soft(primary_hue="emerald", secondary_hue="amber")
    allowed_paths = [str(store.audio_dir.resolve())] if store is not None else None
    return demo.launch(
        max_file_size=max_file_size,
        theme=theme,
        css=CSS,
        head=KEYBOARD_HEAD,
        allowed_paths=allowed_paths,
        **kwargs,
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    models = Models.from_env()
    if spaces is not None:
        models.load()  # ZeroGPU moves weights to the GPU it lends only when they are loaded before the first call
    else:
        models.load_in_background()
    store = ReviewStore()
    start_hub_sync(store, store.data_dir / "hub-export")  # only when ASR_PT_HUB_DATASET and HF_TOKEN are set
    launch(build_demo(models, store=store), store=store)


if __name__ == "__main__":
    main()
