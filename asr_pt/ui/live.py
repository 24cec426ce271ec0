"""The Live microphone tab: the fine-tuned model's transcript grows while the visitor speaks (`asr_pt.streaming`);
when they stop, both models compare on the whole recording (`asr_pt.compare`), as on the Transcribe tab.

Each visitor's stream lives in their session's `gr.State`, on the server. Gradio keeps a closed session's state for
an hour, so `LiveStreams` also knows each session's stream (weakly) and frees its audio when the page is closed.

Gradio serves a recording as one long event that holds a place among the queue's workers (40) from the first piece
to the last, and waits up to its time limit for each next piece. `StreamEvents` bounds those events: one per
session, `stream_limit` for the page, and one that receives nothing for `IDLE_SECONDS` is closed, so idle streams
can neither fill the queue nor keep other visitors from streaming.
"""

from __future__ import annotations

import asyncio
import math
import threading
import weakref
from dataclasses import dataclass

import anyio
import gradio as gr
import numpy as np

from asr_pt.audio import SAMPLE_RATE
from asr_pt.compare import BASE, FINETUNED
from asr_pt.models import DEFAULT_LANGUAGE, ModelLoadError
from asr_pt.settings import DEFAULTS
from asr_pt.streaming import MAX_STREAM_SECONDS, LiveStream, StepFunction, Update, transcribe_step
from asr_pt.ui.gpu import on_gpu
from asr_pt.ui.languages import language_choices
from asr_pt.ui.send_to_review import LastClip
from asr_pt.ui.status import TITLES, Models, log
from asr_pt.ui.transcribe import make_compare, run_markdown, scores_markdown

STREAM_EVERY = 0.5  # seconds between the browser's pieces; the model runs on every 2 s of audio
IDLE_SECONDS = 5.0  # a stream event that receives no piece for this long is closed
IDLE_STATE_SECONDS = 600  # a stream not fed for this long is dropped even if the page stays open
RECORDING_STOPPED = "the recording stopped"  # the next piece starts a new stream
NOTHING_RECORDED = "Nothing was recorded: allow the microphone, press Record and speak."
LIVE_CONCURRENCY_ID = "live"  # the stream events' own concurrency group: they never wait behind other tabs' requests
DEFAULT_STREAM_LIMIT = DEFAULTS.stream_limit


class LiveStreams:
    """Which session holds which stream, so that leaving the page (`demo.unload`) frees it at once."""

    def __init__(self):
        self._streams: weakref.WeakValueDictionary[str, LiveStream] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def start(self, session: str, stream: LiveStream) -> None:
        with self._lock:
            previous = self._streams.get(session)
            self._streams[session] = stream
        if previous is not None:
            previous.release()

    def drop(self, session: str) -> None:
        with self._lock:
            stream = self._streams.pop(session, None)
        if stream is not None:
            stream.release()

    def sessions(self) -> list[str]:
        return list(self._streams)


LIVE_STREAMS = LiveStreams()


@dataclass
class OpenEvent:
    """One of Gradio's stream events, as `StreamEvents` follows it."""

    event: object  # gradio.queueing.Event
    session: str
    idle_timer: asyncio.TimerHandle | None = None
    closed_idle: bool = False


class StreamEvents:
    """The page's open stream events: at most `limit` at once and one per session; an event that receives no piece
    for `idle_seconds` is closed as the browser closes it (Gradio's `/stream/{event_id}/close`).

    Runs on the server's event loop (the stream callback is a coroutine), so its state needs no lock. Gradio's
    events are found in the page's queue by the request that opened them: a callback's `gr.Request` wraps it.
    """

    def __init__(self, demo: gr.Blocks, limit: int = DEFAULT_STREAM_LIMIT, idle_seconds: float = IDLE_SECONDS):
        self.demo, self.limit, self.idle_seconds = demo, limit, idle_seconds
        self._open: dict[str, OpenEvent] = {}  # by Gradio's event id

    def admit(self, request: gr.Request) -> OpenEvent:
        """The open event this piece came by, admitted on its first piece within the limits (raises gr.Error
        otherwise), its idle timer started again; an event being closed is let go."""
        self._forget_finished()
        event = self._event_of(request)
        opened = self._open.get(event._id)
        if closing(event):
            if opened is not None:
                self._let_go(opened)
            return opened or OpenEvent(event, request.session_hash)
        if opened is None:
            session = request.session_hash
            if any(o.session == session for o in self._open.values()):
                raise refuse_piece("This page is streaming already: one live stream per visitor.")
            if len(self._open) >= self.limit:
                raise refuse_piece(
                    f"{self.limit} live streams are open, the most this server runs at once: try again in a few "
                    "seconds."
                )
            opened = self._open[event._id] = OpenEvent(event, session)
        if opened.idle_timer is not None:
            opened.idle_timer.cancel()
        opened.idle_timer = asyncio.get_running_loop().call_later(self.idle_seconds, self._close_idle, opened)
        return opened

    def count(self) -> int:
        self._forget_finished()
        return len(self._open)

    def _event_of(self, request: gr.Request):
        for job in self.demo._queue.active_jobs:
            for event in job or ():
                if event.request is request.request:
                    return event
        raise refuse_piece("This stream is not open: press Record again.")

    def _forget_finished(self) -> None:
        active = {event._id for job in self.demo._queue.active_jobs for event in job or ()}
        for opened in [opened for event_id, opened in self._open.items() if event_id not in active]:
            self._let_go(opened)

    def _let_go(self, opened: OpenEvent) -> None:
        self._open.pop(opened.event._id, None)
        if opened.idle_timer is not None:
            opened.idle_timer.cancel()

    def _close_idle(self, opened: OpenEvent) -> None:
        """What Gradio's close route does: the event ends after one more call with the piece it already had."""
        opened.closed_idle = True
        opened.event.run_time = math.inf
        opened.event.closed = True
        opened.event.signal.set()


def closing(event) -> bool:
    """Whether Gradio calls this stream event a last time, with the piece it already sent: the browser closed it
    (Stop), the page went, or `StreamEvents` closed it."""
    return event.closed or event.run_time == math.inf


def refuse_piece(message: str) -> gr.Error:
    log.info("live piece refused: %s", message)
    return gr.Error(message, print_exception=False)


def live_status(stream: LiveStream) -> str:
    line = f"Heard **{stream.heard_seconds:.1f} s** of at most {stream.max_seconds:g} s"
    if stream.truncated:
        line += " · ⚠️ the text was cut at the model's token limit"
    return line + (f" · **{stream.finished}**" if stream.finished else "")


def make_step(models: Models) -> StepFunction:
    """The fine-tuned model's re-transcription of a stream's state, in one `spaces.GPU` call on ZeroGPU: the state
    (audio so far, text, counters) goes there as plain data, the text comes back, the stream stays here."""

    def step(state) -> Update:
        return transcribe_step(models[FINETUNED], state)

    def duration(state) -> int:
        return step_gpu_seconds(len(state.audio_accum) / SAMPLE_RATE)

    return on_gpu(step, duration, models.zero_gpu, [models.by_side[FINETUNED]])


def step_gpu_seconds(heard_seconds: float) -> int:
    """The GPU time to ask for one update: the model reads all the audio heard so far (at most a stream's length)."""
    return math.ceil(10 + heard_seconds / 2)


def hear(
    models: Models,
    piece: tuple[int, np.ndarray] | None,
    stream: LiveStream | None,
    language: str,
    session: str,
    max_seconds: float = MAX_STREAM_SECONDS,
    step: StepFunction | None = None,
) -> tuple[str, str, LiveStream | None]:
    """One piece from the microphone: starts the session's stream on the first, returns the text so far, the line
    under it and the stream (the session's state). `step` transcribes (`make_step`)."""
    if piece is None:
        return (stream.text, live_status(stream), stream) if stream else ("", "", None)
    model = models[FINETUNED]
    new = stream is None or stream.finished == RECORDING_STOPPED  # the visitor's first or next recording
    if new and not model.loaded and model.load_error is None:  # waiting here would stall the page
        return "", "⏳ The fine-tuned model is still loading: the live transcript starts once it is ready.", None
    try:
        if new:
            stream = LiveStream(model, language=language, max_seconds=max_seconds)
        sample_rate, samples = piece
        stream.feed(sample_rate, samples, step or make_step(models))
        if new:  # only a stream that took its first piece is the session's
            LIVE_STREAMS.start(session, stream)
    except (ValueError, ModelLoadError) as error:  # AudioError is a ValueError: a piece no microphone sends
        raise refuse_piece(str(error)) from error
    return stream.text, live_status(stream), stream


def compare_recording(compare_clip, stream: LiveStream | None, language: str) -> tuple[dict, LastClip]:
    """The whole recording through both models (`make_compare`), as `/transcribe` returns it, and the session's
    `LastClip`; ends the stream."""
    if stream is None or not len(stream.audio):
        raise gr.Error(NOTHING_RECORDED, print_exception=False)
    stream.finish(RECORDING_STOPPED)  # no last step: the comparison transcribes the whole recording anyway
    return compare_clip(stream.recording(), language, "", "")


def show_comparison(result: dict) -> tuple[str, str, str, str, str]:
    """Both models' texts and details, and the scores table, from `compare_recording`'s result."""
    runs = result["runs"]
    texts = [(runs[side]["transcript"] or {}).get("text", "") for side in (FINETUNED, BASE)]
    details = [run_markdown(side, runs[side]) for side in (FINETUNED, BASE)]
    return texts[0], details[0], texts[1], details[1], scores_markdown(result)


# Gradio 6.17's streaming microphone imports its WAV recorder module when it is first shown; Record pressed before that
# import ends throws "<name> is not a constructor" and leaves the microphone "recording" with no recorder, streaming
# nothing (a visitor quick to press Record, or any visitor of a busy server). The page then presses Stop and Record
# again for the visitor, every half second until the recorder is there (at most 20 times).
RECORDER_RETRY_HEAD = """
<script>
(() => {
  let pressed = 0, tries = 0;
  const button = (name) => [...document.querySelectorAll("#live-audio button")].find(
    (b) => (b.getAttribute("aria-label") || b.textContent || "").includes(name));
  document.addEventListener("click", (event) => {
    if (event.isTrusted && event.target.closest && event.target.closest("#live-audio button")) {
      pressed = Date.now();
      tries = 0;
    }
  }, true);
  window.addEventListener("unhandledrejection", (event) => {
    const message = String((event.reason && event.reason.message) || event.reason);
    if (!message.includes("is not a constructor") || Date.now() - pressed > 15000 || tries >= 20) return;
    tries += 1;
    setTimeout(() => {
      const stop = button("Stop");
      if (stop) stop.click();
      setTimeout(() => { const record = button("Record"); if (record) record.click(); }, 250);
    }, 500);
  });
})();
</script>
"""


def live_tab(
    demo: gr.Blocks,
    models: Models,
    max_stream_seconds: float = MAX_STREAM_SECONDS,
    stream_limit: int = DEFAULT_STREAM_LIMIT,
) -> StreamEvents:
    gr.Markdown(
        f"Press **Record** and speak Portuguese: the fine-tuned model's transcript grows every 2 s as it hears you "
        f"(up to {max_stream_seconds:g} s). Press **Stop**, and both models compare on the whole recording."
    )
    with gr.Row(equal_height=False):
        microphone = gr.Audio(
            sources=["microphone"], streaming=True, type="numpy", label="Live microphone", elem_id="live-audio"
        )
        language = gr.Dropdown(language_choices(), value=DEFAULT_LANGUAGE, label="Language")
    live_text = gr.Textbox(
        label=f"Live · {TITLES[FINETUNED]}",
        lines=3,
        interactive=False,
        elem_id="live-text",
        elem_classes="model-output",
    )
    live_info = gr.Markdown(elem_id="live-info")
    stream = gr.State(None, time_to_live=IDLE_STATE_SECONDS, delete_callback=lambda s: s and s.release())
    gr.Markdown("### The whole recording, both models")
    with gr.Row(equal_height=True):
        outputs = []
        for side in (FINETUNED, BASE):
            with gr.Column():
                outputs.append(gr.Textbox(label=TITLES[side], lines=3, interactive=False, elem_id=f"live-{side}-text"))
                outputs.append(gr.Markdown(elem_id=f"live-{side}-info"))
    scores = gr.Markdown(elem_id="live-scores")

    events = StreamEvents(demo, stream_limit)
    step, compare_clip = make_step(models), make_compare(models)

    async def on_piece(piece, state, lang, request: gr.Request):
        opened = events.admit(request)
        if closing(opened.event):  # this piece was heard already
            if opened.closed_idle and state is not None:
                return state.text, live_status(state) + f" · no audio for {IDLE_SECONDS:g} s: stopped listening", state
            return hear(models, None, state, lang, request.session_hash)
        return await anyio.to_thread.run_sync(
            hear, models, piece, state, lang, request.session_hash, max_stream_seconds, step
        )

    def on_stop(state, lang):
        if state is None or state.finished == RECORDING_STOPPED:  # no recording (RECORDER_RETRY_HEAD presses Stop)
            return NOTHING_RECORDED, *[gr.skip()] * 5
        result, _ = compare_recording(compare_clip, state, lang)
        return live_status(state), *show_comparison(result)

    def on_leave(request: gr.Request):
        LIVE_STREAMS.drop(request.session_hash)

    microphone.stream(
        on_piece,
        [microphone, stream, language],
        [live_text, live_info, stream],
        stream_every=STREAM_EVERY,
        concurrency_limit=None,  # bounded by `events` instead: refused at once rather than left waiting in the queue
        concurrency_id=LIVE_CONCURRENCY_ID,
        time_limit=int(max_stream_seconds + 10),
        api_visibility="private",
    )
    microphone.stop_recording(on_stop, [stream, language], [live_info, *outputs, scores], api_visibility="private")
    demo.unload(on_leave)
    return events
