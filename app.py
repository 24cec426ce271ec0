"""The Space: Qwen3-ASR-1.7B-PT and its zero-shot base, side by side, on Portuguese speech you record or upload.

The page is built by `asr_pt.ui`; this file reads the settings once (`asr_pt.settings`, README's Demo section),
opens the review store, starts the optional Hub sync and serves the page. `python app.py` starts it.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from asr_pt.alignment import Aligner
from asr_pt.models import ModelLoadError
from asr_pt.review.hub_sync import start_hub_sync
from asr_pt.review.store import ReviewStore
from asr_pt.settings import from_environment
from asr_pt.ui import Models, build_demo, launch
from asr_pt.ui.transcribe import read_examples


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    settings = from_environment()
    # A first run times the CPU; on ZeroGPU there is none (a model runs only inside a GPU call, asr_pt.ui.gpu).
    models = Models.from_settings(settings, warm_up=Path(read_examples()[0][0]))
    aligner = Aligner(settings.aligner_model)  # loaded the first time word timings are asked for
    if settings.zero_gpu:
        # ZeroGPU moves weights to the GPU it lends only when they are loaded in this process before the first call;
        # a worker that loaded them itself would lose them with the worker.
        models.load()
        with contextlib.suppress(ModelLoadError):  # the word timings box says why
            aligner.load()
    else:
        models.load_in_background()
    store = ReviewStore(settings.data_dir, lease_seconds=settings.lease_seconds, reviews_needed=settings.reviews_needed)
    start_hub_sync(  # only when ASR_PT_HUB_DATASET and HF_TOKEN are set
        store,
        store.data_dir / "hub-export",
        repo_id=settings.hub_dataset,
        token=settings.hf_token,
        every_minutes=settings.hub_sync_minutes,
    )
    launch(build_demo(models, settings, store=store, aligner=aligner), settings)


if __name__ == "__main__":
    main()
