"""Visitor sessions against a reviewer's login: memory per 1,000 anonymous sessions, and whether the login survives.

python bench/review_sessions.py [--sessions 11000] [--capacity N]

Serves the page (two tiny model folders, never loaded: a visitor's page load does not need them) with one review
store, logs a reviewer in over HTTP, then opens `--sessions` anonymous sessions, each running the page-load event
every visitor runs (the status line), as raw HTTP to /run/predict. Prints the server's resident memory every 1,000
sessions, how many sessions Gradio holds, and whether the reviewer can still save afterwards. `--capacity` is
Gradio's `state_session_capacity` (the page's default when left out).
"""

from __future__ import annotations

import argparse
import gc
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
from test_review_attacks import Visitor  # noqa: E402

from asr_pt.models import ASRModel  # noqa: E402
from asr_pt.review.reviewers import hash_password  # noqa: E402
from asr_pt.review.store import ReviewStore  # noqa: E402
from asr_pt.tiny_model import build_tiny_model  # noqa: E402
from asr_pt.ui import Models, build_demo, launch  # noqa: E402
from asr_pt.ui.login import ReviewAccess  # noqa: E402


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=11_000)
    parser.add_argument("--capacity", type=int, default=None)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="asr-pt-bench-sessions-"))
    store = ReviewStore(folder / "data")
    for n in range(3):
        samples = (np.random.default_rng(n).standard_normal(16000) * 0.1).astype(np.float32)
        store.add_item(
            samples,
            source_id=f"clip{n}",
            hypothesis_finetuned="o gato",
            hypothesis_base="o rato",
            model_finetuned="ft",
            model_base="base",
        )
    model = build_tiny_model(folder / "tiny", seed=1)
    access = ReviewAccess(oauth=False, reviewers={"ana": hash_password("segredo")}, allowlist=set())
    demo = build_demo(Models(ASRModel(str(model)), ASRModel(str(model))), store=store, access=access)
    extra = {} if args.capacity is None else {"state_session_capacity": args.capacity}
    _, url, _ = launch(demo, server_name="127.0.0.1", prevent_thread_lock=True, **extra)
    try:
        visitor = Visitor(url, demo)
        status = visitor.fn_index("refresh_status")  # the status line's page-load event, outside the queue
        reviewer = secrets.token_hex(6)
        token = visitor.log_in("ana", "segredo", reviewer)
        key = visitor.join("_show_next_if_logged_in", [token], reviewer)["output"]["data"][0]
        print(f"capacity {demo.state_session_capacity} sessions; reviewer logged in, item {key} on screen")
        http = httpx.Client(base_url=url, timeout=60)
        start, last, began = rss_mb(), rss_mb(), time.perf_counter()
        print(f"before: {start:.0f} MB resident")
        for n in range(1, args.sessions + 1):
            body = {"data": [], "fn_index": status, "session_hash": secrets.token_hex(6)}
            http.post("/gradio_api/run/predict", json=body).raise_for_status()
            if n % 1000 == 0:
                now = rss_mb()
                print(
                    f"{n:6d} sessions: {now:6.0f} MB (+{now - last:5.1f} MB for the last 1,000), Gradio holds "
                    f"{len(demo.state_holder.session_data)} sessions, {time.perf_counter() - began:.0f} s"
                )
                last = now
        end = rss_mb()
        print(f"after {args.sessions} sessions: {end:.0f} MB, +{(end - start) / args.sessions * 1000:.1f} MB per 1,000")
        kept = reviewer in demo.state_holder  # before she calls again, which makes her a new Gradio session
        saved = visitor.join("save_item", [token, key, "O gato.", None], reviewer)
        outcome = "saved" if saved["success"] else saved["output"]
        print(f"reviewer's session state still kept by Gradio: {kept}; her save after the visitors: {outcome}")
        print(f"Gradio's time_last_used entries (never pruned by Gradio): {len(demo.state_holder.time_last_used)}")
    finally:
        demo.close()


if __name__ == "__main__":
    main()
