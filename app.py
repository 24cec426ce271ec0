"""The Space: Qwen3-ASR-1.7B-PT and its zero-shot base, side by side, on Portuguese speech you record or upload.

The page is built by `asr_pt.ui`; this file reads the configuration from the environment (see README's Demo
section), opens the review store, starts the optional Hub sync and serves the page. `python app.py` starts it.
"""

from __future__ import annotations

import logging

from asr_pt.review.hub_sync import start_hub_sync
from asr_pt.review.store import ReviewStore
from asr_pt.ui import Models, build_demo, launch
from asr_pt.ui.transcribe import spaces


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    models = Models.from_env()
    if spaces is not None:
        models.load()  # ZeroGPU moves weights to the GPU it lends only when they are loaded before the first call
    else:
        models.load_in_background()
    store = ReviewStore()
    start_hub_sync(store, store.data_dir / "hub-export")  # only when ASR_PT_HUB_DATASET and HF_TOKEN are set
    launch(build_demo(models, store=store))


if __name__ == "__main__":
    main()
