"""Word timings on the page: each transcript's words with their times, a click on a word plays the clip from there,
SRT and WebVTT downloads; the same for the item on screen in the Review tab; and the `/word_timings` endpoint.

The work is `asr_pt.alignment.Aligner.align`. Every word is model or visitor text, so the HTML is built here from
escaped text and nothing else; subtitles travel inside the page as `data:` links, so no file is written, served or
left behind on the server.
"""

from __future__ import annotations

import html
import os
import urllib.parse
from collections.abc import Sequence

import gradio as gr

from asr_pt.alignment import ALIGNER_MODEL, Aligner, WordTiming
from asr_pt.compare import BASE, FINETUNED
from asr_pt.models import DEFAULT_LANGUAGE, ModelLoadError
from asr_pt.review.store import ReviewStore, StoreError
from asr_pt.subtitles import to_srt, to_webvtt
from asr_pt.ui.review import require_reviewer
from asr_pt.ui.status import TITLES, log
from asr_pt.ui.transcribe import spaces

ALIGNER_ENV = "ASR_PT_ALIGNER_MODEL"
GPU_SECONDS = 60  # on ZeroGPU: two alignments of a clip of at most 3 minutes
TICK_LABEL = "Word timings: time each word of the transcripts; click a word to play the clip from there"
# A click on a timed word asks the server to move the player (gr.Audio's playback_position); Gradio's player keeps
# its audio element to itself, so this is the documented way in.
SEEK_JS = """
element.addEventListener("click", (event) => {
  const word = event.target.closest("[data-start]");
  if (word) trigger("click", {start: Number(word.dataset.start)});
});
"""
CSS = """
.timed-word { border: none; background: none; padding: 0.1em 0.15em; margin: 0; cursor: pointer; font: inherit; }
.timed-word:hover { background: var(--color-accent-soft); border-radius: 4px; }
.timed-word sup { color: var(--body-text-color-subdued); font-size: 0.7em; margin-left: 0.1em; }
.timings-title { font-weight: 600; margin: 0.2em 0; }
.timings-note { color: var(--body-text-color-subdued); }
"""


def aligner_from_env() -> Aligner:
    return Aligner(os.environ.get(ALIGNER_ENV, ALIGNER_MODEL))


def aligner_status(aligner: Aligner) -> str:
    """What the word timings box says about its aligner, like the status line says about the models."""
    if aligner.load_error is not None:
        return (
            f"⚠️ Word timings are unavailable. {aligner.load_error} To use a checkpoint folder, start the app with "
            f"{ALIGNER_ENV}=/path/to/folder. Everything else works."
        )
    state = "ready" if aligner.loaded else "loads the first time word timings are asked for"
    return f"Word timings by `{aligner.model_id}`: {state}."


def words_html(title: str, words: Sequence[WordTiming] | str, file_stem: str) -> str:
    """One transcript's words as buttons carrying their start time, and its subtitles; or why there are none."""
    heading = f'<p class="timings-title">{html.escape(title)}</p>'
    if isinstance(words, str):
        return f'{heading}<p class="timings-note">{html.escape(words)}</p>'
    if not words:
        return f'{heading}<p class="timings-note">no words to time</p>'
    buttons = " ".join(
        f'<button type="button" class="timed-word" data-start="{word.start:.3f}" '
        f'title="{word.start:.2f}-{word.end:.2f} s">{html.escape(word.word)}<sup>{word.start:.1f}</sup></button>'
        for word in words
    )
    links = " · ".join(
        data_link(content, f"{file_stem}.{extension}", mime, label)
        for content, extension, mime, label in (
            (to_srt(words), "srt", "application/x-subrip", "SRT"),
            (to_webvtt(words), "vtt", "text/vtt", "WebVTT"),
        )
    )
    return f'{heading}<div class="timed-words">{buttons}</div><p class="timings-downloads">Subtitles: {links}</p>'


def data_link(content: str, filename: str, mime: str, label: str) -> str:
    """A download link that carries its file: percent-encoded, so nothing in it can leave the attribute."""
    href = f"data:{mime};charset=utf-8,{urllib.parse.quote(content, safe='')}"
    return f'<a download="{html.escape(filename)}" href="{href}">{html.escape(label)}</a>'


def time_words(aligner: Aligner, audio, text: str, language: str, max_seconds: float | None) -> list[WordTiming] | str:
    """The words' timings, or why there are none, in words for the page (a side's failure leaves the other be)."""
    try:
        return aligner.align(audio, text, language, max_seconds=max_seconds)
    except (ValueError, ModelLoadError) as error:  # AudioError is a ValueError
        log.info("word timings refused: %s", error)
        return str(error)


def on_gpu(function):
    """On a ZeroGPU Space the GPU is lent per call; elsewhere the function runs as it is."""
    return spaces.GPU(duration=GPU_SECONDS)(function) if spaces is not None else function


def transcript_timings(
    aligner: Aligner, ticked: bool, audio: str | None, result: dict | None, max_seconds: float | None
) -> list[str]:
    """The Transcribe tab's word timings: the box's status and, per model, its timed words (empty when unticked).

    `result` is the page's last `/transcribe` result, as the browser sends it back: each text and language in it is
    checked by the aligner like any visitor's input."""
    if not ticked or not audio or not isinstance(result, dict) or not isinstance(result.get("runs"), dict):
        return [aligner_status(aligner), "", ""]
    pages = []
    for side in (FINETUNED, BASE):
        run = result["runs"].get(side)
        transcript = run.get("transcript") if isinstance(run, dict) else None
        if not isinstance(transcript, dict):
            words = "no transcript: the model could not be loaded"
        elif not transcript.get("text"):
            words = "no transcript to time"
        else:
            words = time_words(aligner, audio, transcript["text"], transcript.get("language"), max_seconds)
        pages.append(words_html(TITLES[side], words, TITLES[side].lower().replace(" ", "-")))
    return [aligner_status(aligner), *pages]


def word_timings_endpoint(aligner: Aligner, max_seconds: float | None):
    """`/word_timings`: audio file, text, language -> [{word, start, end}] in seconds; bad input is a gr.Error."""

    @on_gpu
    def word_timings(audio: str | None, text: str, language: str) -> list[dict]:
        if not audio:
            raise gr.Error("no audio: give the clip whose words to time")
        words = time_words(aligner, audio, text, language, max_seconds)
        if isinstance(words, str):
            raise gr.Error(words)
        return [word.to_dict() for word in words]

    return word_timings


def seek(evt: gr.EventData) -> gr.Audio:
    """Moves the player to the clicked word's start; the value comes from the browser, so only a number is kept."""
    try:
        seconds = max(0.0, float(evt._data["start"]))
    except (TypeError, KeyError, ValueError):
        return gr.skip()
    return gr.Audio(playback_position=seconds if seconds < float("inf") else 0.0)


def play_js(player_id: str) -> str:
    """Presses the player's play button unless it is playing already."""
    return (
        f"() => {{ const b = document.querySelector('#{player_id} button.play-pause-button'); "
        "if (b && b.getAttribute('aria-label') !== 'Pause') b.click(); }"
    )


def timed_words_view(elem_id: str, player: gr.Audio) -> gr.HTML:
    """An HTML block of timed words whose clicks move `player`."""
    view = gr.HTML("", elem_id=elem_id, js_on_load=SEEK_JS, css_template=CSS)
    view.click(seek, None, player, queue=False, api_visibility="private").then(
        None, js=play_js(player.elem_id), api_visibility="private"
    )
    return view


def transcribe_timings(aligner: Aligner, audio: gr.Audio, result: gr.JSON, max_seconds: float | None) -> None:
    """The Transcribe tab's "word timings" box, and the `/word_timings` endpoint."""
    with gr.Group():
        ticked = gr.Checkbox(False, label=TICK_LABEL, elem_id="timings-tick")
        status = gr.Markdown(lambda: aligner_status(aligner), elem_id="timings-status")  # fresh on each page load
        with gr.Row(equal_height=False):
            views = [timed_words_view(f"{side}-timings", audio) for side in (FINETUNED, BASE)]
    show = on_gpu(lambda tick, clip, value: transcript_timings(aligner, tick, clip, value, max_seconds))
    for trigger in (ticked.change, result.change):
        trigger(show, [ticked, audio, result], [status, *views], api_visibility="private")

    with gr.Column(visible=False):  # the endpoint's inputs and output: for API clients only
        api_inputs = [
            gr.Audio(type="filepath", label="audio"),
            gr.Textbox(label="text"),
            gr.Textbox(DEFAULT_LANGUAGE, label="language"),
        ]
        api_output = gr.JSON(label="word timings")
        api_button = gr.Button("word timings")
    api_button.click(word_timings_endpoint(aligner, max_seconds), api_inputs, api_output, api_name="word_timings")


def item_timings(
    aligner: Aligner, store: ReviewStore, reviewer: str | None, ticked: bool, current: dict | None, text: str
) -> str:
    """The Review tab's timed words of the text in the editor, against the clip of the item on screen."""
    if not ticked or not current:  # `current` is server-side: a visitor who is not logged in has none
        return ""
    require_reviewer(reviewer)
    try:
        item = store.get(int(current["id"]))
    except (StoreError, KeyError, TypeError, ValueError) as error:
        raise gr.Error(f"There is no item on screen: {error}") from error
    words = time_words(aligner, store.audio_path(item.audio_hash), text, DEFAULT_LANGUAGE, None)
    return words_html("The text below, word by word", words, f"item-{item.id}")


def review_timings(
    aligner: Aligner, store: ReviewStore, reviewer: gr.State, current: gr.State, editor: gr.Textbox, player: gr.Audio
) -> None:
    """The Review tab's word timings: reviewers only, for the item on screen and the text in its editor."""
    label = "Word timings: time the words of the text below; click one to hear it"
    ticked = gr.Checkbox(False, label=label, elem_id="review-timings-tick")
    view = timed_words_view("review-timings", player)
    show = on_gpu(lambda who, tick, item, text: item_timings(aligner, store, who, tick, item, text))
    for trigger in (ticked.change, current.change):
        trigger(show, [reviewer, ticked, current, editor], view, api_visibility="private")
