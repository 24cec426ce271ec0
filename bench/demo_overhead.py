"""What the demo adds to the models' own work, and how long `python app.py` takes to be ready.

1. One side-by-side request through the app's functions (the `/transcribe` endpoint and the formatting of the page)
   against two direct `Qwen3ASRModel.transcribe` calls on the same loaded tiny models and clip: medians of many runs,
   as a ratio. Goal: at most 1.05.
2. Start to ready: `python app.py` with two tiny models, until the page answers and until both models are loaded.

    python bench/demo_overhead.py [--runs 50] [--max-new-tokens 32]
"""

import argparse
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from gradio_client import Client

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from asr_pt.audio import SAMPLE_RATE, load_audio  # noqa: E402
from asr_pt.compare import BASE, FINETUNED  # noqa: E402
from asr_pt.espeak import speak  # noqa: E402
from asr_pt.models import ASRModel  # noqa: E402
from asr_pt.settings import DEFAULTS  # noqa: E402
from asr_pt.tiny_model import build_tiny_model  # noqa: E402
from asr_pt.ui.status import Models  # noqa: E402
from asr_pt.ui.transcribe import make_transcribe, show  # noqa: E402


def median_seconds(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def request_overhead(model_dirs: list[Path], clip: Path, runs: int, max_new_tokens: int) -> None:
    models = Models(*(ASRModel(str(d), max_new_tokens=max_new_tokens) for d in model_dirs))
    models.load()
    transcribe = make_transcribe(models, DEFAULTS.demo_max_seconds)
    direct = [models[side].load() for side in (FINETUNED, BASE)]  # the very same Qwen3ASRModel objects

    def through_app():
        show(transcribe(str(clip), "Portuguese", "", "")[0], models)

    def two_direct_calls():
        for model in direct:
            model.transcribe(audio=str(clip), language="Portuguese")

    samples = load_audio(clip)

    def two_direct_calls_on_decoded_audio():  # the least the models can be asked to do: no decoding at all
        for model in direct:
            model.transcribe(audio=(samples, SAMPLE_RATE), language="Portuguese")

    candidates = {
        "side-by-side request through the app": through_app,
        "two direct Qwen3ASRModel.transcribe calls on the file": two_direct_calls,
        "two direct Qwen3ASRModel.transcribe calls on decoded samples": two_direct_calls_on_decoded_audio,
    }
    for fn in candidates.values():  # warm-up: first calls allocate and fill caches
        median_seconds(fn, 3)
    times = {name: [] for name in candidates}
    for _ in range(runs):  # interleaved, so drift in machine load hits all alike
        for name, fn in candidates.items():
            times[name].append(median_seconds(fn, 1))
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, seconds in medians.items():
        print(f"{name}: median {seconds * 1000:.1f} ms over {runs} runs")
    app_median, *direct_medians = medians.values()
    print(
        f"ratio app / direct: {app_median / direct_medians[0]:.3f} on the file, "
        f"{app_median / direct_medians[1]:.3f} on decoded samples (goal <= 1.05; max_new_tokens={max_new_tokens})"
    )


def start_to_ready(model_dirs: list[Path], repeats: int, data_dir: Path) -> None:
    times = [time_one_start(model_dirs, data_dir) for _ in range(repeats)]
    page, ready = (statistics.median(t) for t in zip(*times, strict=True))
    print(f"python app.py, start to page served: median {page:.1f} s over {repeats} starts")
    print(f"python app.py, start to both models ready: median {ready:.1f} s")


def time_one_start(model_dirs: list[Path], data_dir: Path) -> tuple[float, float]:
    """Seconds from launching `python app.py` to the page answering, and to both models loaded."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "ASR_PT_FINETUNED_MODEL": str(model_dirs[0]),
        "ASR_PT_BASE_MODEL": str(model_dirs[1]),
        "ASR_PT_DATA_DIR": str(data_dir),  # the review store, out of the repository
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
    }
    url = f"http://127.0.0.1:{port}/"
    start = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "app.py"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        page = wait_for(lambda: httpx.get(url).status_code == 200, server) - start
        client = Client(url, verbose=False)
        ready = wait_for(
            lambda: all(s["state"] == "ready" for s in client.predict(api_name="/status").values()), server
        )
        return page, ready - start
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_for(condition, server: subprocess.Popen, timeout: float = 300) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if server.poll() is not None:
            raise RuntimeError("app.py exited")
        try:
            if condition():
                return time.perf_counter()
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"not ready in {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--starts", type=int, default=3, help="how many times to start app.py")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll otherwise
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    with tempfile.TemporaryDirectory() as folder:
        model_dirs = [build_tiny_model(Path(folder) / f"tiny-{seed}", seed=seed) for seed in (1, 2)]
        clip = speak("A reunião começa às nove horas e acaba ao meio-dia.", Path(folder) / "clip.wav")
        request_overhead(model_dirs, clip, args.runs, args.max_new_tokens)
        start_to_ready(model_dirs, args.starts, Path(folder) / "data")


if __name__ == "__main__":
    main()
