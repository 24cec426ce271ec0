"""The Space: Qwen3-ASR-1.7B-PT and its zero-shot base, side by side, on Portuguese speech you record or upload.

A thin layer over `asr_pt`: `asr_pt.compare.compare` does the work and returns plain data, which is what the
`/transcribe` API endpoint gives back; the functions here only load the models, wire components and format.
With a review store (as `python app.py` opens) the page also has "send to review" and the Review and Data tabs,
whose callbacks call `asr_pt.store`, `asr_pt.scoreboard` and `asr_pt.dataset_export`.
Configuration comes from the environment (see README's Demo section); `python app.py` starts it.
"""

from __future__ import annotations

import csv
import datetime
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import gradio as gr
import soundfile as sf

from asr_pt.audio import AudioError, load_audio
from asr_pt.compare import BASE, FINETUNED, PAIRS, REFERENCE, compare, pair_name
from asr_pt.dataset_export import export_dataset
from asr_pt.hub_sync import start_hub_sync
from asr_pt.metrics import PROTOCOLS, align_words
from asr_pt.models import (
    AUTO_LANGUAGE,
    BASE_MODEL,
    DEFAULT_LANGUAGE,
    FINETUNED_MODEL,
    SERVING_CPU_DTYPE,
    ASRModel,
    ModelLoadError,
    default_device,
    default_dtype,
    supported_languages,
)
from asr_pt.reviewers import authenticate, hf_user_allowed, load_allowlist, load_reviewers
from asr_pt.scoreboard import scoreboard
from asr_pt.store import STATUSES, VERDICTS, ReviewStore, SaveConflict, StoreError
from asr_pt.text import normalize, written_form

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
    """The page's two models, loaded in a background thread from start, so the page is up while they load.

    With a `warm_up` clip, each model transcribes it once loaded: the first run of a model is the slowest, and its
    time gives the page a measured real-time factor to tell visitors how long they will wait.
    """

    def __init__(self, finetuned: ASRModel, base: ASRModel, warm_up: Path | None = None):
        self.by_side = {FINETUNED: finetuned, BASE: base}
        self.warm_up = warm_up

    @classmethod
    def from_env(cls) -> Models:
        ids = [os.environ.get(MODEL_ENV[side], DEFAULT_MODELS[side]) for side in (FINETUNED, BASE)]
        dtype = default_dtype(default_device(), cpu_dtype=SERVING_CPU_DTYPE)
        models = [ASRModel(model_id, dtype=dtype, max_new_tokens=MAX_NEW_TOKENS) for model_id in ids]
        return cls(*models, warm_up=Path(read_examples()[0][0]))

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
                log.info("%s model ready: %s (%s on %s)", TITLES[side], model.model_id, model.dtype, model.device)
            except ModelLoadError as error:
                log.error("%s model unavailable. %s", TITLES[side], explain_load_failure(side, error))
        for side, model in self.by_side.items():
            if self.warm_up is not None and model.loaded:
                model.transcribe(load_audio(self.warm_up))
                log.info("%s model warmed up: real-time factor %.2f", TITLES[side], model.measured_rtf)

    def status(self) -> dict[str, dict]:
        """Per side: the model id, its state ("ready", "loading" or "unavailable", with the reason), dtype, device,
        the memory its weights hold (GB, once loaded) and its measured real-time factor (once it ran)."""
        states = {}
        for side, model in self.by_side.items():
            error = model.load_error
            state = "ready" if model.loaded else "unavailable" if error else "loading"
            message = explain_load_failure(side, error) if error else ""
            weights = model.weight_bytes
            states[side] = {
                "model_id": model.model_id,
                "state": state,
                "message": message,
                "dtype": model.dtype,
                "device": model.device,
                "weights_gb": round(weights / 1e9, 2) if weights is not None else None,
                "rtf": model.measured_rtf,
            }
        return states

    def wait_estimate(self, audio_seconds: float) -> float | None:
        """Seconds both models should take on a clip this long, on CPU, from their measured real-time factors."""
        loaded = [model for model in self.by_side.values() if model.loaded]
        if not loaded or any(model.device != "cpu" or model.measured_rtf is None for model in loaded):
            return None
        return sum(model.measured_rtf for model in loaded) * audio_seconds

    @property
    def settled(self) -> bool:
        return all(model.loaded or model.load_error for model in self.by_side.values())


def explain_load_failure(side: str, error: Exception | str) -> str:
    return f"{error} To use a checkpoint folder, start the app with {MODEL_ENV[side]}=/path/to/folder."


def clip_seconds(audio: str | None) -> float | None:
    """A clip's length from its header, or None when it cannot be read (the real error is reported by compare())."""
    try:
        return sf.info(audio).duration
    except (sf.SoundFileError, RuntimeError, TypeError):
        return None


def gpu_seconds(audio: str, max_seconds: float) -> int:
    """The GPU time to ask ZeroGPU for: both models on a clip take a fraction of its length, plus warm-up."""
    seconds = clip_seconds(audio)
    return math.ceil(30 + min(max_seconds if seconds is None else seconds, max_seconds) / 2)


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
        if status["weights_gb"] is not None:
            line += f" ({status['dtype']} on {status['device']}, weights {status['weights_gb']:.1f} GB)"
        lines.append(line + (f". {status['message']}" if status["message"] else ""))
    return "\n\n".join(lines)


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


def spaced(words: list) -> list[tuple[str, str | None]]:
    """HighlightedText runs unmarked words together, so each word carries its trailing space."""
    return [(word + " ", tag) for word, tag in words]


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
    audio.change(
        lambda path: (None, wait_markdown(models, path)),
        audio,
        [result, audio_info],
        queue=False,
        api_visibility="private",
    )
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


# --- Review: "send to review", the Review tab and the Data tab ----------------------------------------------------
# The demo stays public; reviewing and exporting need a reviewer who logged in. On a Space that is a Hugging Face
# login (optionally limited by `ASR_PT_REVIEWER_ALLOWLIST`); self-hosted, a name and password checked against the
# hashes in `ASR_PT_REVIEWERS`. The reviewer's name lives in the session's server-side `gr.State`, set only after
# that check, and every callback checks it again. Callbacks only call `asr_pt.store`, `asr_pt.scoreboard` and
# `asr_pt.dataset_export`.

VERDICT_LABELS = {
    "finetuned_better": "Fine-tuned better",
    "base_better": "Base better",
    "equal": "Both equal",
    "both_wrong": "Both wrong",
}
VERDICT_CHOICES = [(VERDICT_LABELS[verdict], verdict) for verdict in VERDICTS]
NOT_LOGGED_IN = "Log in as a reviewer to review."

# Ctrl+Enter saves, Ctrl+Space plays or pauses, Ctrl+ArrowRight skips: while the Review tab is on screen.
KEYBOARD_HEAD = """
<script>
document.addEventListener("keydown", (event) => {
  if (!event.ctrlKey) return;
  const visible = (selector) => {
    const element = document.querySelector(selector);
    return element && element.offsetParent !== null ? element : null;
  };
  let target = null;
  if (event.key === "Enter") target = visible("#review-save");
  else if (event.code === "Space") target = visible("#review-audio button.play-pause-button");
  else if (event.key === "ArrowRight") target = visible("#review-skip");
  if (target) {
    event.preventDefault();
    target.click();
  }
});
</script>
"""


@dataclass(frozen=True)
class ReviewAccess:
    """Who may review: HF users (on a Space) or configured name/password reviewers (self-hosted)."""

    oauth: bool
    reviewers: dict[str, str]
    allowlist: set[str]

    @classmethod
    def from_env(cls) -> ReviewAccess:
        return cls(oauth=bool(os.environ.get("SPACE_ID")), reviewers=load_reviewers(), allowlist=load_allowlist())


def require_reviewer(reviewer: str | None) -> str:
    if not reviewer:
        raise gr.Error(NOT_LOGGED_IN)
    return reviewer


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


class ReviewTab:
    """The Review tab's components and callbacks for one store."""

    def __init__(self, demo: gr.Blocks, store: ReviewStore, access: ReviewAccess, reviewer: gr.State):
        self.demo, self.store, self.access, self.reviewer = demo, store, access, reviewer
        self.current = gr.State(None)  # {"id", "version"} of the item on screen
        with gr.Column(visible=True) as self.login_panel:
            if access.oauth:
                listed = " on the reviewer list" if access.allowlist else ""
                gr.Markdown(f"Reviewing needs a Hugging Face login{listed}.")
                gr.LoginButton()
            else:
                gr.Markdown("Reviewers log in with the name and password they were given.")
                with gr.Row():
                    self.name = gr.Textbox(label="Reviewer name", elem_id="login-name")
                    self.password = gr.Textbox(label="Password", type="password", elem_id="login-password")
                self.login_button = gr.Button("Log in", elem_id="login-button")
            self.login_message = gr.Markdown(elem_id="login-message")
        with gr.Column(visible=False) as self.review_panel:
            self.who = gr.Markdown(elem_id="review-who")
            self.info = gr.Markdown(elem_id="review-info")
            self.audio = gr.Audio(
                label="Clip (the speed button plays 0.5x to 2x)",
                type="filepath",
                interactive=False,
                elem_id="review-audio",
            )
            with gr.Row():
                self.finetuned = gr.Textbox(
                    label="Fine-tuned hypothesis", interactive=False, elem_id="review-finetuned"
                )
                self.base = gr.Textbox(label="Base hypothesis", interactive=False, elem_id="review-base")
            self.diff = gr.HighlightedText(
                label="Word diff: base against fine-tuned", color_map=DIFF_COLORS, elem_id="review-diff"
            )
            self.reference = gr.Markdown(elem_id="review-reference")
            self.editor = gr.Textbox(label="What was said (written form)", lines=3, elem_id="review-editor")
            self.verdict = gr.Radio(VERDICT_CHOICES, label="Which model did better?", elem_id="review-verdict")
            with gr.Row():
                self.save = gr.Button("Save (Ctrl+Enter)", variant="primary", elem_id="review-save")
                self.skip = gr.Button("Skip (Ctrl+→)", elem_id="review-skip")
            with gr.Row():
                self.reason = gr.Textbox(
                    label="Flag reason", placeholder="no speech, not Portuguese, private data...", scale=3
                )
                self.flag = gr.Button("Flag", variant="stop", elem_id="review-flag", scale=1)
            gr.Markdown("Keyboard: **Ctrl+Enter** save · **Ctrl+Space** play/pause · **Ctrl+→** skip")
            self.logout = gr.Button("Log out", size="sm")
        self.item_outputs = [
            self.current,
            self.info,
            self.audio,
            self.finetuned,
            self.base,
            self.diff,
            self.reference,
            self.editor,
            self.verdict,
            self.reason,
        ]
        self._wire()

    # -- callbacks --------------------------------------------------------------------------------------------------

    def show_next(self, reviewer: str | None) -> list:
        reviewer = require_reviewer(reviewer)
        item = self.store.claim_next(reviewer)
        if item is None:
            done = "The queue is empty: nothing left to review. Thank you!"
            return [None, done, None, "", "", [], "", "", None, ""]
        return self._show(item)

    def _show(self, item) -> list:
        counts = self.store.counts()
        info = (
            f"Item **{item.id}** from **{item.source}** (`{item.source_id}`{', test split' if item.is_test else ''})"
            f" · {item.duration:.1f} s · models disagree on {item.disagreement:.0f}% of words"
            f" · {counts['pending']} pending, {counts['skipped']} skipped"
            + (f" · already reviewed {item.reviews}x" if item.reviews else "")
        )
        reference = f"Source reference: *{item.reference}*" if item.reference else ""
        diff = spaced(align_words(normalize(item.hypothesis_finetuned), normalize(item.hypothesis_base)))
        return [
            {"id": item.id, "version": item.version},
            info,
            str(self.store.audio_path(item.audio_hash)),
            item.hypothesis_finetuned,
            item.hypothesis_base,
            diff,
            reference,
            written_form(item.hypothesis_finetuned),
            None if item.reviews else item.verdict,  # a second review is independent: no one else's verdict shown
            "",
        ]

    def save_item(self, reviewer: str | None, current: dict | None, text: str, verdict: str | None) -> list:
        reviewer = require_reviewer(reviewer)
        if not current:
            raise gr.Error("There is no item on screen.")
        try:
            self.store.save(current["id"], reviewer, text, current["version"], verdict=verdict)
        except SaveConflict as conflict:
            gr.Warning(str(conflict) + " Press Save again to replace their text with yours.")
            return [{"id": current["id"], "version": conflict.current.version}] + [gr.skip()] * 9
        except StoreError as error:
            raise gr.Error(str(error)) from error
        gr.Info("Saved.")
        return self.show_next(reviewer)

    def skip_item(self, reviewer: str | None, current: dict | None) -> list:
        reviewer = require_reviewer(reviewer)
        if current:
            try:
                self.store.skip(current["id"], reviewer, current["version"])
            except SaveConflict as conflict:
                gr.Warning(str(conflict))
            except StoreError as error:
                raise gr.Error(str(error)) from error
        return self.show_next(reviewer)

    def flag_item(self, reviewer: str | None, current: dict | None, reason: str) -> list:
        reviewer = require_reviewer(reviewer)
        if not current:
            raise gr.Error("There is no item on screen.")
        try:
            self.store.flag(current["id"], reviewer, current["version"], reason)
        except SaveConflict as conflict:
            gr.Warning(str(conflict))
        except StoreError as error:
            raise gr.Error(str(error)) from error
        return self.show_next(reviewer)

    def password_login(self, name: str, password: str) -> list:
        reviewer = authenticate(name, password, self.access.reviewers)
        if reviewer is None:
            return [None, gr.Column(visible=True), gr.Column(visible=False), "Wrong name or password.", ""]
        return [reviewer, gr.Column(visible=False), gr.Column(visible=True), "", f"Reviewing as **{reviewer}**."]

    def oauth_login(self, profile: gr.OAuthProfile | None) -> list:
        if profile is None:
            return [None, gr.Column(visible=True), gr.Column(visible=False), "", ""]
        if not hf_user_allowed(profile.username, self.access.allowlist):
            message = f"{profile.username} is not on the reviewer list."
            return [None, gr.Column(visible=True), gr.Column(visible=False), message, ""]
        who = f"Reviewing as **{profile.username}** (Hugging Face)."
        return [profile.username, gr.Column(visible=False), gr.Column(visible=True), "", who]

    def log_out(self, reviewer: str | None, current: dict | None) -> list:
        if reviewer and current:
            self.store.release(current["id"], reviewer)
        return [None, None, gr.Column(visible=True), gr.Column(visible=False), "Logged out.", ""]

    def _wire(self) -> None:
        login_outputs = [self.reviewer, self.login_panel, self.review_panel, self.login_message, self.who]
        if self.access.oauth:  # the login button reloads the page, with the profile in the session
            logins = [self.demo.load(self.oauth_login, None, login_outputs, api_visibility="private")]
        else:
            logins = [
                trigger(self.password_login, [self.name, self.password], login_outputs, api_visibility="private")
                for trigger in (self.login_button.click, self.password.submit)
            ]
        for login in logins:
            login.then(self._show_next_if_logged_in, self.reviewer, self.item_outputs, api_visibility="private")
        self.save.click(
            self.save_item,
            [self.reviewer, self.current, self.editor, self.verdict],
            self.item_outputs,
            api_visibility="private",
        )
        self.skip.click(self.skip_item, [self.reviewer, self.current], self.item_outputs, api_visibility="private")
        self.flag.click(
            self.flag_item, [self.reviewer, self.current, self.reason], self.item_outputs, api_visibility="private"
        )
        self.logout.click(
            self.log_out,
            [self.reviewer, self.current],
            [self.reviewer, self.current, self.login_panel, self.review_panel, self.login_message, self.who],
            api_visibility="private",
        )

    def _show_next_if_logged_in(self, reviewer: str | None) -> list:
        return self.show_next(reviewer) if reviewer else [gr.skip()] * len(self.item_outputs)


class DataTab:
    """Counts, the live scoreboard, recent corrections, and an export for reviewers."""

    def __init__(self, store: ReviewStore, reviewer: gr.State):
        self.store, self.reviewer = store, reviewer
        self._figures: tuple[int, list] | None = None  # (store.last_change(), figures): every open page polls
        self.counts = gr.Dataframe(
            headers=list(STATUSES), label="Items by status", interactive=False, elem_id="data-counts"
        )
        self.scores = gr.Dataframe(
            headers=["protocol", "model", "WER %", "CER %"],
            label="Both models against the reviewers' corrections",
            interactive=False,
            elem_id="data-scores",
        )
        self.summary = gr.Markdown(elem_id="data-summary")
        self.recent = gr.Dataframe(
            headers=["item", "reviewer", "correction", "verdict", "when"],
            label="Recent corrections",
            interactive=False,
            elem_id="data-recent",
        )
        with gr.Row():
            refresh = gr.Button("Refresh", size="sm", elem_id="data-refresh")
            export = gr.Button("Export the dataset (reviewers)", size="sm", elem_id="data-export")
        self.download = gr.File(label="Export (zip: parquet, sft.jsonl, card)", visible=False)
        outputs = [self.counts, self.scores, self.summary, self.recent]
        refresh.click(self.figures, None, outputs, api_visibility="private")
        gr.Timer(15).tick(self.figures, None, outputs, api_visibility="private")
        export.click(self.export, self.reviewer, self.download, api_visibility="private")
        self.load_outputs = outputs

    def figures(self) -> list:
        """The tab's figures, recomputed only when the store changed: the scoreboard rescores every correction."""
        change = self.store.last_change()
        cached = self._figures
        if cached is None or cached[0] != change:
            cached = self._figures = (change, self._compute_figures())
        return cached[1]

    def _compute_figures(self) -> list:
        counts = self.store.counts()
        board = scoreboard(self.store)
        verdicts = ", ".join(f"{label} **{board.verdicts[value]}**" for label, value in VERDICT_CHOICES)
        agreement = (
            f"{board.double_reviewed} items reviewed twice or more, mean WER between reviewers "
            f"**{board.mean_agreement_wer:.1f}%**"
            if board.mean_agreement_wer is not None
            else "no item has two reviews yet"
        )
        summary = f"**{board.items}** corrected items. Verdicts: {verdicts}. Agreement: {agreement}."
        recent = [
            [item.id, item.reviewer, item.text, item.verdict or "", _when(item.corrected_at)]
            for item in self.store.corrected(limit=10, newest_first=True)
        ]
        return [[[counts[status] for status in STATUSES]], board.rows(), summary, recent]

    def export(self, reviewer: str | None):
        """Zips a fresh export into the data folder's exports/, keeping only the newest zip: a Space's disk is small."""
        require_reviewer(reviewer)
        exports = self.store.data_dir / "exports"
        exports.mkdir(exist_ok=True)
        for old in exports.glob("asr-pt-reviews-*.zip"):
            old.unlink()
        with tempfile.TemporaryDirectory(prefix="asr-pt-export-") as folder:
            export_dataset(self.store, Path(folder) / "dataset")
            name = exports / f"asr-pt-reviews-{time.strftime('%Y%m%d-%H%M%S')}"
            archive = shutil.make_archive(str(name), "zip", Path(folder) / "dataset")
        return gr.File(value=archive, visible=True)


def _when(timestamp: float | None) -> str:
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else ""


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


def review_tabs(demo: gr.Blocks, store: ReviewStore, access: ReviewAccess) -> None:
    """The Review and Data tabs, inside the page's `gr.Tabs`."""
    with gr.Tab("Review"):
        reviewer = gr.State(None)  # the logged-in reviewer's name, server-side; inside a tab, not among the tabs
        ReviewTab(demo, store, access, reviewer)
    with gr.Tab("Data") as data:
        tab = DataTab(store, reviewer)
    data.select(tab.figures, None, tab.load_outputs, api_visibility="private")


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
