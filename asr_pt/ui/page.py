"""The whole page: the status line, the Transcribe tab and, with a review store, the Review and Data tabs; and
`launch`, which serves it with the page's look and an upload limit that fits the longest clip accepted."""

from __future__ import annotations

import math
from pathlib import Path

import gradio as gr

from asr_pt.alignment import Aligner
from asr_pt.audio import MAX_BYTES_PER_SECOND
from asr_pt.compare import BASE, FINETUNED
from asr_pt.review.logins import LoginThrottle, ReviewerSessions
from asr_pt.review.store import ReviewStore
from asr_pt.settings import DEFAULTS, Settings, configure_server
from asr_pt.ui.batch import batch_tab
from asr_pt.ui.data import DataTab
from asr_pt.ui.explorer import ExplorerTab
from asr_pt.ui.handouts import Handouts
from asr_pt.ui.live import live_tab
from asr_pt.ui.login import Login, ReviewAccess
from asr_pt.ui.review import KEYBOARD_HEAD, ReviewTab
from asr_pt.ui.send_to_review import SendRate, send_to_review_button
from asr_pt.ui.status import Models, status_markdown
from asr_pt.ui.timings import WordTimer, review_timings, transcribe_timings
from asr_pt.ui.transcribe import transcribe_tab

# Every 10 minutes, delete what Gradio cached more than 30 minutes ago: above all uploads that no request used (a
# request deletes its upload once read) or that Gradio refused before the request ran.
CACHE_SWEEP = (600, 1800)
CSS = """
.model-output textarea { font-size: 1.1rem !important; line-height: 1.5 !important; }
#status p { margin: 0.15em 0; }
"""


def review_tabs(
    demo: gr.Blocks, store: ReviewStore, access: ReviewAccess, word_timer: WordTimer, settings: Settings
) -> None:
    """The Review, Data and Explorer tabs, inside the page's `gr.Tabs`, sharing one login."""
    handouts = Handouts()
    handouts.sweep_in_background()
    with gr.Tab("Review"):
        login = Login(access, ReviewerSessions(), LoginThrottle(), trust_proxy=settings.trust_proxy)
        review = ReviewTab(demo, store, login, handouts)
        with review.timings_slot:
            review_timings(word_timer, store, login, review.key, review.editor, review.audio)
    with gr.Tab("Data") as data:
        tab = DataTab(store, login, handouts)
    data.select(tab.figures, login.token, tab.outputs, api_visibility="private")
    with gr.Tab("Explorer") as explorer:
        explorer_tab = ExplorerTab(store, login, settings.eval_dir)
    explorer.select(explorer_tab.folders, login.token, explorer_tab.folder, api_visibility="private")


def model_link(model_id: str) -> str:
    """A Hub id as a link to its page; a checkpoint folder as its name."""
    if model_id.count("/") == 1 and not model_id.startswith((".", "/", "~")) and not Path(model_id).exists():
        return f"[`{model_id}`](https://huggingface.co/{model_id})"
    return f"`{model_id}`"


def page_status(demo: gr.Blocks, models: Models) -> dict:
    """`/status`: per model its state (ready, busy, loading or unavailable) and the requests waiting for it, and
    `queued`, the requests waiting for their turn in the page's queue."""
    queue = getattr(demo, "_queue", None)
    return {**models.status(), "queued": len(queue) if queue is not None else 0}


def settle_page(demo: gr.Blocks, status: gr.Markdown, timer: gr.Timer, models: Models) -> None:
    """Once both models are loaded (or failed), pages open on the final status and do not poll: the page config was
    built while they loaded, and every page load would otherwise flash "loading"."""
    status.value, timer.active = status_markdown(models), False
    for component in (getattr(demo, "config", None) or {}).get("components", []):
        if component["id"] == status._id:
            component["props"]["value"] = status.value
        elif component["id"] == timer._id:
            component["props"]["active"] = False


def build_demo(
    models: Models,
    settings: Settings = DEFAULTS,
    *,
    store: ReviewStore | None = None,
    access: ReviewAccess | None = None,
    send_rate: SendRate | None = None,
    aligner: Aligner | None = None,
) -> gr.Blocks:
    """The page, within the settings' limits; with a review store it also has "send to review" and the Review,
    Data and Explorer tabs. Word timings use `aligner`, by default the one the settings name (loaded the first time
    it is asked for)."""
    word_timer = WordTimer(aligner or Aligner(settings.aligner_model), settings.zero_gpu)
    max_seconds = settings.demo_max_seconds
    with gr.Blocks(title="Qwen3-ASR Portuguese: fine-tuned vs zero-shot", delete_cache=CACHE_SWEEP) as demo:
        gr.Markdown(
            "# 🎙️ Qwen3-ASR Portuguese: fine-tuned vs zero-shot\n"
            f"Speak or upload Portuguese and compare {model_link(models[FINETUNED].model_id)}, fine-tuned on "
            f"Portuguese, with its zero-shot base {model_link(models[BASE].model_id)}, side by side, with error "
            "rates and a word diff."
        )
        status = gr.Markdown(status_markdown(models), elem_id="status")
        send_rate = send_rate or SendRate(settings.review_sends_per_hour)  # one limit for every way into review
        with gr.Tabs():
            with gr.Tab("Transcribe"):
                transcribed = transcribe_tab(models, status, max_seconds)
                transcribe_timings(demo, word_timer, transcribed, max_seconds)
                if store is not None:
                    send_to_review_button(store, transcribed.last, max_seconds, send_rate, settings.trust_proxy)
            with gr.Tab("Live microphone"):
                live_tab(demo, models, settings.stream_max_seconds)
            with gr.Tab("Many files"):
                batch_tab(models, settings, store, send_rate)
            if store is not None:
                review_tabs(demo, store, access or ReviewAccess.from_settings(settings), word_timer, settings)

        timer = gr.Timer(1.0)

        def refresh_status() -> tuple[str, gr.Timer]:
            return status_markdown(models), gr.Timer(active=not models.settled)

        def api_status() -> dict:
            return page_status(demo, models)

        demo.load(refresh_status, outputs=[status, timer], queue=False, api_visibility="private")
        timer.tick(refresh_status, outputs=[status, timer], queue=False, api_visibility="private")
        gr.api(api_status, api_name="status", queue=False)
    models.when_settled(lambda: settle_page(demo, status, timer, models))
    # Two requests at once by default: one can run the fine-tuned model while the other runs the base (each model
    # runs one at a time); a visitor beyond the queue's size is told it is full instead of waiting for hours.
    # api_open=False: outside a Space Gradio lets /run/predict skip the queue, its size cap and concurrency limit.
    return demo.queue(
        default_concurrency_limit=settings.demo_concurrency, max_size=settings.demo_queue_size, api_open=False
    )


def launch(demo: gr.Blocks, settings: Settings = DEFAULTS, **kwargs):
    """`demo.launch` with the page's look, the review keyboard shortcuts, an upload limit that fits the longest clip
    accepted and at most the settings' number of sessions' state (reviewer logins do not live there, so a smaller
    bound only makes a long-idle visitor transcribe again). No folder is an allowed path: a reviewer's clips and
    exports are handed out one by one (`asr_pt.ui.handouts`). X-Forwarded-For counts only behind a proxy."""
    configure_server(settings)
    max_file_size = math.ceil(settings.demo_max_seconds * MAX_BYTES_PER_SECOND)
    theme = gr.themes.Soft(primary_hue="emerald", secondary_hue="amber")
    kwargs.setdefault("state_session_capacity", settings.session_capacity)
    return demo.launch(max_file_size=max_file_size, theme=theme, css=CSS, head=KEYBOARD_HEAD, **kwargs)
