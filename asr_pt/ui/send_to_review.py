"""The Transcribe tab's "send to review": queues the clip this session transcribed, with what the models wrote for it.

Nothing comes from the browser: the clip, both transcripts, the model ids and the reference typed with the clip are
the session's `LastClip`, kept on the server. Sends are limited per session and across all sessions, and a clip is
queued once.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

import gradio as gr
import numpy as np

from asr_pt.audio import content_hash, duration
from asr_pt.compare import BASE, FINETUNED
from asr_pt.review.store import ReviewStore
from asr_pt.settings import DEFAULTS
from asr_pt.ui.status import log

SENDS_PER_SESSION = 10
# How long a session's last clip stays on the server (at most 5.8 MB: 180 s of 16-bit audio).
LAST_CLIP_SECONDS = 900
NOT_TRANSCRIBED = "Transcribe a clip first, then send it to review."


@dataclass(frozen=True, eq=False)
class LastClip:
    """The session's last comparison, kept on the server (gr.State) by the Transcribe tab: all that "send to
    review" stores, so it never takes a clip, transcript, model id or reference from the browser."""

    pcm: np.ndarray  # the 16 kHz clip as int16: half the memory of float, and the store keeps 16-bit anyway
    reference: str  # as typed with the clip
    texts: dict[str, str | None]  # per side, None when the model could not load
    model_ids: dict[str, str]

    @property
    def samples(self) -> np.ndarray:
        return self.pcm.astype(np.float32) / 32768.0

    @property
    def seconds(self) -> float:
        return duration(self.pcm)

    @property
    def audio_hash(self) -> str:
        return content_hash(self.samples)


class SendRate:
    """At most `limit` sends in any `window` seconds across all sessions, so new sessions cannot flood the queue."""

    def __init__(self, limit: int = DEFAULTS.review_sends_per_hour, window: float = 3600.0):
        self.limit, self.window = limit, window
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Counts a send and returns 0, or returns the seconds until one is allowed and counts nothing."""
        now = time.monotonic()
        with self._lock:
            while self._times and self._times[0] <= now - self.window:
                self._times.popleft()
            if len(self._times) >= self.limit:
                return self._times[0] + self.window - now
            self._times.append(now)
            return 0.0


def refused(message: str) -> gr.Error:
    log.info("send to review refused: %s", message)
    return gr.Error(message, print_exception=False)


def queue_for_review(
    store: ReviewStore, last: LastClip | None, sent: int, rate: SendRate, max_seconds: float
) -> tuple[str, int]:
    """Queues the session's last clip for reviewers; returns the message and the session's new count of sends."""
    if last is None:
        raise refused(NOT_TRANSCRIBED)
    if None in last.texts.values():
        raise refused("Both models must have transcribed the clip before it can be reviewed.")
    if last.seconds > max_seconds:
        raise refused(f"The clip is too long to review: {last.seconds:.1f} s, the limit is {max_seconds:g} s.")
    audio_hash = last.audio_hash
    if store.has_item("demo", audio_hash):
        return "This clip is in the review queue already. Thank you!", sent
    if sent >= SENDS_PER_SESSION:
        raise refused(f"This page has sent {sent} clips to review, the most one visit may send. Thank you!")
    wait = rate.take()
    if wait:
        raise refused(f"Many clips were sent to review lately: try again in {math.ceil(wait / 60)} min.")
    item_id = store.add_item(
        last.samples,
        reference=last.reference,
        hypothesis_finetuned=last.texts[FINETUNED],
        hypothesis_base=last.texts[BASE],
        model_finetuned=last.model_ids[FINETUNED],
        model_base=last.model_ids[BASE],
    )
    return f"Sent to review as item {item_id}. Thank you!", sent + 1


def send_to_review_button(store: ReviewStore, last: gr.State, max_seconds: float, rate: SendRate) -> None:
    """The Transcribe tab's "send to review": under the results, for any visitor."""
    with gr.Row():
        button = gr.Button("Send to review", size="sm", elem_id="send-to-review")
        message = gr.Markdown("Stores this clip and both transcripts for our reviewers to correct.")
    sent = gr.State(0)

    def send(last_clip: LastClip | None, sent_count: int) -> tuple[str, int]:
        return queue_for_review(store, last_clip, sent_count, rate, max_seconds)

    button.click(send, [last, sent], [message, sent], api_visibility="private")
