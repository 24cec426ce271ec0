"""Foundation figures: the tiny checkpoint's size and build, load and transcribe times; optionally install time.

python bench/foundation.py            # tiny model figures
python bench/foundation.py --install  # also a fresh venv from requirements.txt: install time and size
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def folder_megabytes(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def bench_install() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(REPO / "requirements.txt")], check=True)
        print(f"install: {time.perf_counter() - start:.0f} s (pip cache warm), venv {folder_megabytes(venv):.0f} MB")


def bench_tiny_model(runs: int) -> None:
    from asr_pt.audio import load_audio
    from asr_pt.espeak import speak
    from asr_pt.models import ASRModel
    from asr_pt.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folder = build_tiny_model(Path(tmp) / "tiny", seed=1)
        print(f"tiny checkpoint: {folder_megabytes(folder):.1f} MB, built in {time.perf_counter() - start:.2f} s")
        start = time.perf_counter()
        model = ASRModel(str(folder), max_new_tokens=32)
        model.load()
        print(f"load: {time.perf_counter() - start:.2f} s")
        audio = load_audio(speak("O gato dorme no sofá.", Path(tmp) / "clip.wav"))
        model.transcribe(audio)  # warm-up
        seconds = [model.transcribe(audio).seconds for _ in range(runs)]
        median = statistics.median(seconds)
        print(
            f"transcribe {len(audio) / 16000:.2f} s clip: median {median * 1000:.0f} ms over {runs} runs "
            f"(RTF {median / (len(audio) / 16000):.3f})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--install", action="store_true", help="also time a fresh install of requirements.txt")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    if args.install:
        bench_install()
    bench_tiny_model(args.runs)
