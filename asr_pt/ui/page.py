"""The whole page: the status line, the Transcribe tab and, with a review store, the Review and Data tabs; and
`launch`, which serves it with the page's look and an upload limit that fits the longest clip accepted."""

from __future__ import annotations

import math
import os

import gradio as gr

from asr_pt.models import BASE_MODEL, FINETUNED_MODEL
from asr_pt.review.store import ReviewStore
from asr_pt.ui.data import DataTab
from asr_pt.ui.explorer import ExplorerTab
from asr_pt.ui.review import KEYBOARD_HEAD, ReviewAccess, ReviewTab
from asr_pt.ui.status import Models, status_markdown
from asr_pt.ui.transcribe import send_to_review_button, transcribe_tab

MAX_SECONDS = float(os.environ.get("ASR_PT_DEMO_MAX_SECONDS", 180))
# Two requests at once: one can run the fine-tuned model while the other runs the base; each model runs one at a time.
CONCURRENCY = int(os.environ.get("ASR_PT_DEMO_CONCURRENCY", 2))
# Room for a clip of MAX_SECONDS as 48 kHz stereo 32-bit WAV, the largest a recorder commonly writes.
MAX_FILE_BYTES_PER_SECOND = 48000 * 2 * 4
CSS = """
.model-output textarea { font-size: 1.1rem !important; line-height: 1.5 !important; }
#status p { margin: 0.15em 0; }
"""


def review_tabs(demo: gr.Blocks, store: ReviewStore, access: ReviewAccess) -> None:
    """The Review, Data and Explorer tabs, inside the page's `gr.Tabs`."""
    with gr.Tab("Review"):
        reviewer = gr.State(None)  # the logged-in reviewer's name, server-side; inside a tab, not among the tabs
        ReviewTab(demo, store, access, reviewer)
    with gr.Tab("Data") as data:
        tab = DataTab(store, reviewer)
    data.select(tab.figures, None, tab.load_outputs, api_visibility="private")
    with gr.Tab("Explorer") as explorer:
        explorer_tab = ExplorerTab(store, reviewer)
    explorer.select(explorer_tab.folders, reviewer, explorer_tab.folder, api_visibility="private")


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
