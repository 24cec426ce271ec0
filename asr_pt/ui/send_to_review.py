"""The Transcribe tab's "send to review": queues the clip this session transcribed, with what the models wrote for it.

Nothing comes from the browser: the clip, both transcripts, the model ids and the reference typed with the clip are
the session's `LastClip`, kept on the server. Sends are limited per session, per visitor (address: a fair share of
the page's hourly sends) and across all visitors, and a clip is queued once (a clip queued already costs nothing).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr
import numpy as np

from asr_pt.audio import content_hash, duration
from asr_pt.compare import BASE, FINETUNED
from asr_pt.review.store import ReviewStore
from asr_pt.settings import DEFAULTS
from asr_pt.ui.clients import request_address
from asr_pt.ui.status import log

SENDS_PER_SESSION = 10
VISITOR_SHARE = 0.25  # of the page's hourly sends, the most one visitor (address) may use
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
    """At most `limit` sends in any `window` seconds across all visitors, and at most `share` of them from one visitor
    (one address), so neither new sessions nor one visitor can use up everyone's sends."""

    def __init__(
        self,
        limit: int = DEFAULTS.review_sends_per_hour,
        window: float = 3600.0,
        *,
        share: float = VISITOR_SHARE,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.limit, self.window, self.clock = limit, window, clock
        self.visitor_limit = max(1, math.floor(limit * share))
        self._sends: deque[tuple[float, str]] = deque()  # (when, who), oldest first; at most `limit` long
        self._by_visitor: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self, visitor: str) -> float:
        """Counts a send by `visitor` and returns 0, or returns the seconds until one is allowed and counts nothing."""
        now = self.clock()
        with self._lock:
            while self._sends and self._sends[0][0] <= now - self.window:
                _, who = self._sends.popleft()
                self._by_visitor[who] -= 1
                if not self._by_visitor[who]:
                    del self._by_visitor[who]
            if len(self._sends) >= self.limit:
                return self._sends[0][0] + self.window - now
            if self._by_visitor[visitor] >= self.visitor_limit:
                return next(when for when, who in self._sends if who == visitor) + self.window - now
            self._sends.append((now, visitor))
            self._by_visitor[visitor] += 1
            return 0.0


def busy_message(wait: float) -> str:
    return f"Many clips were sent to review lately, from here or in all: try again in {math.ceil(wait / 60)} min."


def refused(message: str) -> gr.Error:
    log.info("send to review refused: %s", message)
    return gr.Error(message, print_exception=False)


def queue_for_review(
    store: ReviewStore, last: LastClip | None, sent: int, rate: SendRate, max_seconds: float, visitor: str
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
    wait = rate.take(visitor)
    if wait:
        raise refused(busy_message(wait))
    item_id = store.add_item(
        last.samples,
        reference=last.reference,
        hypothesis_finetuned=last.texts[FINETUNED],
        hypothesis_base=last.texts[BASE],
        model_finetuned=last.model_ids[FINETUNED],
        model_base=last.model_ids[BASE],
    )
    return f"Sent to review as item {item_id}. Thank you!", sent + 1


def send_to_review_button(
    store: ReviewStore, last: gr.State, max_seconds: float, rate: SendRate, trust_proxy: bool
) -> None:
    """The Transcribe tab's "send to review": under the results, for any visitor."""
    with gr.Row():
        button = gr.Button("Send to review", size="sm", elem_id="send-to-review")
        message = gr.Markdown("Stores this clip and both transcripts for our reviewers to correct.")
    sent = gr.State(0)

    def send(last_clip: LastClip | None, sent_count: int, request: gr.Request) -> tuple[str, int]:
        visitor = request_address(request, trust_proxy)
        return queue_for_review(store, last_clip, sent_count, rate, max_seconds, visitor)

    button.click(send, [last, sent], [message, sent], api_visibility="private")
