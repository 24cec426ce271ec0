"""Word timings on the page: each transcript's words with their times, a click on a word plays the clip from there,
SRT and WebVTT downloads; the same for the item on screen in the Review tab; and the `/word_timings` endpoint.

The work is `asr_pt.alignment.Aligner.align`. Every word is model or visitor text, so the HTML is built here from
escaped text and nothing else; subtitles travel inside the page as `data:` links, so no file is written, served or
left behind on the server.
"""

from __future__ import annotations

import html
import math
import urllib.parse
from collections.abc import Sequence

import gradio as gr
import numpy as np

from asr_pt.alignment import Aligner, WordTiming
from asr_pt.audio import SAMPLE_RATE, AudioError, load_audio
from asr_pt.compare import BASE, FINETUNED
from asr_pt.models import DEFAULT_LANGUAGE, ModelLoadError
from asr_pt.review.items import StoreError
from asr_pt.review.store import ReviewStore
from asr_pt.settings import fields_env
from asr_pt.subtitles import to_srt, to_webvtt
from asr_pt.ui.gpu import on_gpu
from asr_pt.ui.login import Login
from asr_pt.ui.send_to_review import LastClip
from asr_pt.ui.status import TITLES, log
from asr_pt.ui.transcribe import TranscribeTab
from asr_pt.ui.uploads import RecentUploads

ALIGNER_ENV = fields_env("aligner_model")
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


def alignment_seconds(samples: np.ndarray, texts: Sequence[tuple[str, str]], max_seconds: float | None) -> int:
    """The GPU time to ask ZeroGPU for timing `texts` against one clip: a fraction of the clip per text, plus the
    worker's start (two texts of a 3-minute clip: a minute)."""
    return math.ceil(10 + len(texts) * len(samples) / SAMPLE_RATE / 7)


class WordTimer:
    """The aligner as the page uses it: `time_texts(samples, [(text, language)], max_seconds)` -> per text its
    words or why there are none, one `spaces.GPU` call per use on ZeroGPU (16 kHz samples in, words out)."""

    def __init__(self, aligner: Aligner, zero_gpu: bool = False):
        self.aligner = aligner

        def time_texts(
            samples: np.ndarray, texts: Sequence[tuple[str, str]], max_seconds: float | None
        ) -> list[list[WordTiming] | str]:
            audio = (samples, SAMPLE_RATE)
            return [time_words(aligner, audio, text, language, max_seconds) for text, language in texts]

        self.time_texts = on_gpu(time_texts, alignment_seconds, zero_gpu)

    @property
    def status(self) -> str:
        return aligner_status(self.aligner)


def transcript_timings(timer: WordTimer, ticked: bool, last: LastClip | None, result: dict | None) -> list[str]:
    """The Transcribe tab's word timings: the box's status and, per model, its timed words (empty when unticked,
    and then no GPU is asked for).

    The clip and the texts are the session's last comparison, kept on the server. Only each text's language comes
    from `result`, the page's last `/transcribe` result as the browser sends it back: the aligner checks it like any
    visitor's input, and a forged one can only spoil the sender's own timings."""
    if not ticked or last is None:
        return [timer.status, "", ""]
    words: dict[str, list[WordTiming] | str] = {}
    for side in (FINETUNED, BASE):
        text = last.texts.get(side)
        if text is None:
            words[side] = "no transcript: the model could not be loaded"
        elif not text:
            words[side] = "no transcript to time"
    to_time = [side for side in (FINETUNED, BASE) if side not in words]
    if to_time:
        texts = [(last.texts[side], transcript_language(result, side)) for side in to_time]
        words |= zip(to_time, timer.time_texts(last.pcm, texts, None), strict=True)
    pages = [
        words_html(TITLES[side], words[side], TITLES[side].lower().replace(" ", "-")) for side in (FINETUNED, BASE)
    ]
    return [timer.status, *pages]


def transcript_language(result: dict | None, side: str):
    """The language the result gives for a side's transcript (detected, or the one asked for), as it is."""
    try:
        return result["runs"][side]["transcript"]["language"]
    except (TypeError, KeyError, IndexError):
        return DEFAULT_LANGUAGE


def word_timings_endpoint(timer: WordTimer, max_seconds: float | None):
    """`/word_timings`: audio file, text, language -> [{word, start, end}] in seconds; bad input is a gr.Error."""

    uploads = RecentUploads()

    def word_timings(audio: str | None, text: str, language: str) -> list[dict]:
        try:
            clip = uploads.read(audio, max_seconds)  # the upload is deleted once read, as /transcribe's
        except ValueError as error:
            raise gr.Error(str(error), print_exception=False) from error
        [words] = timer.time_texts(clip.samples, [(text, language)], max_seconds)
        if isinstance(words, str):
            raise gr.Error(words, print_exception=False)
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


def transcribe_timings(demo: gr.Blocks, timer: WordTimer, tab: TranscribeTab, max_seconds: float) -> None:
    """The Transcribe tab's "word timings" box, and the `/word_timings` endpoint."""
    with gr.Group():
        ticked = gr.Checkbox(False, label=TICK_LABEL, elem_id="timings-tick")
        status = gr.Markdown(timer.status, elem_id="timings-status")
        with gr.Row(equal_height=False):
            views = [timed_words_view(f"{side}-timings", tab.audio) for side in (FINETUNED, BASE)]

    # Fresh on each page load (the aligner may have loaded since), by a private event that stays out of the API.
    def refresh_status() -> str:
        return timer.status

    def time_transcripts(tick: bool, last: LastClip | None, result: dict | None) -> list[str]:
        return transcript_timings(timer, tick, last, result)

    demo.load(refresh_status, None, status, queue=False, api_visibility="private")
    for trigger in (ticked.change, tab.result.change):
        trigger(time_transcripts, [ticked, tab.last, tab.result], [status, *views], api_visibility="private")

    with gr.Column(visible=False):  # the endpoint's inputs and output: for API clients only
        api_inputs = [
            gr.Audio(type="filepath", label="audio"),
            gr.Textbox(label="text"),
            gr.Textbox(DEFAULT_LANGUAGE, label="language"),
        ]
        api_output = gr.JSON(label="word timings")
        api_button = gr.Button("word timings")
    api_button.click(word_timings_endpoint(timer, max_seconds), api_inputs, api_output, api_name="word_timings")


def item_timings(
    timer: WordTimer, store: ReviewStore, login: Login, token: str | None, ticked: bool, key: str | None, text: str
) -> str:
    """The Review tab's timed words of the text in the editor, against the clip of the item this login was shown.
    The login and the item are checked here, before any GPU call, and the clip read here."""
    if not ticked or not key:  # nothing on screen (logged out, or not yet in): nothing to time, nothing to refuse
        return ""
    session = login.require(token)
    if not session.item:
        return ""
    try:
        item = store.get(session.item[0])
    except StoreError as error:
        raise gr.Error(str(error), print_exception=False) from error
    try:
        samples = load_audio(store.audio_path(item.audio_hash), max_seconds=None)
    except AudioError as error:
        words: list[WordTiming] | str = str(error)
    else:
        [words] = timer.time_texts(samples, [(text, DEFAULT_LANGUAGE)], None)
    return words_html("The text below, word by word", words, f"item-{item.id}")


def review_timings(
    timer: WordTimer, store: ReviewStore, login: Login, key: gr.Textbox, editor: gr.Textbox, player: gr.Audio
) -> None:
    """The Review tab's word timings: reviewers only, for the item on screen and the text in its editor."""
    label = "Word timings: time the words of the text below; click one to hear it"
    ticked = gr.Checkbox(False, label=label, elem_id="review-timings-tick")
    view = timed_words_view("review-timings", player)

    def time_item(token: str | None, tick: bool, on_screen: str | None, text: str) -> str:
        return item_timings(timer, store, login, token, tick, on_screen, text)

    for trigger in (ticked.change, player.change):  # the player gets each item's clip (a hidden box fires no change)
        trigger(time_item, [login.token, ticked, key, editor], view, api_visibility="private")
