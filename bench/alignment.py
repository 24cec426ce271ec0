"""How long word timings take on the tiny aligner, and what `asr_pt.alignment` adds to qwen-asr's own call.

1. Build and load: `build_tiny_aligner` and `Aligner.load` (after qwen-asr's import).
2. Per clip length (espeak-ng sentences joined into clips of 2 s to 3 minutes): the median time (interleaved runs) of
   `Aligner.align` (reads the file, checks, aligns, maps words back to the text and clips the times) against a direct
   `Qwen3ForcedAligner.align` on the same samples, and the words timed per second.
3. For the longest clip: what `Aligner.align` adds to qwen-asr's call alone (reading the file, giving the times back to
   the written words), and writing SRT and WebVTT.

    python bench/alignment.py [--runs 10] [--device cpu]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from asr_pt.alignment import Aligner, clipped, words_with_punctuation  # noqa: E402
from asr_pt.audio import SAMPLE_RATE, load_audio, write_wav  # noqa: E402
from asr_pt.espeak import speak  # noqa: E402
from asr_pt.subtitles import to_srt, to_webvtt  # noqa: E402
from asr_pt.tiny_aligner import build_tiny_aligner  # noqa: E402
from asr_pt.tiny_model import SENTENCES_PATH  # noqa: E402

TARGET_SECONDS = (2, 10, 30, 60, 180)


def median_seconds(*fns, runs: int) -> list[float]:
    """Each function's median time over `runs` rounds, the functions taking turns so load from others hits all."""
    times = [[] for _ in fns]
    for _ in range(runs):
        for fn, spent in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def clips(folder: Path) -> list[tuple[Path, str, float]]:
    """Clips of about each target length: espeak-ng sentences one after another, with their joined text."""
    sentences = SENTENCES_PATH.read_text(encoding="utf-8").splitlines()
    spoken = [(load_audio(speak(s, folder / f"s{i}.wav")), s) for i, s in enumerate(sentences[:40])]
    made = []
    for target in TARGET_SECONDS:
        samples, texts = [], []
        while sum(len(s) for s in samples) < target * SAMPLE_RATE:
            audio, text = spoken[len(texts) % len(spoken)]
            samples.append(audio)
            texts.append(text)
        joined = np.concatenate(samples)[: int(target * SAMPLE_RATE)]
        path = folder / f"clip-{target}s.wav"
        write_wav(path, joined)
        kept = texts[: max(1, round(len(texts) * len(joined) / sum(len(s) for s in samples)))]
        made.append((path, " ".join(kept), len(joined) / SAMPLE_RATE))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import qwen_asr  # noqa: F401  (its import, ~5 s, is not the aligner's cost)

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        start = time.perf_counter()
        checkpoint = build_tiny_aligner(folder / "aligner")
        built = time.perf_counter() - start
        size = sum(f.stat().st_size for f in checkpoint.iterdir()) / 1e6
        aligner = Aligner(str(checkpoint), device=args.device)
        start = time.perf_counter()
        direct = aligner.load()
        loaded = time.perf_counter() - start
        print(f"tiny aligner: {size:.1f} MB, built in {built:.2f} s, loaded in {loaded:.2f} s ({args.device})")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other jobs make the times noisy)")

        print(f"{'clip':>8} {'words':>6} {'Aligner.align':>14} {'qwen-asr align':>15} {'ratio':>6} {'words/s':>8}")
        longest = None
        for path, text, seconds in clips(folder):
            samples = load_audio(path)
            aligner.align(path, text, "Portuguese")  # warm-up
            ours, theirs = median_seconds(
                lambda path=path, text=text: aligner.align(path, text, "Portuguese"),
                lambda samples=samples, text=text: direct.align((samples, SAMPLE_RATE), text, "Portuguese"),
                runs=args.runs,
            )
            words = len(text.split())
            print(
                f"{seconds:7.1f}s {words:6d} {ours * 1000:11.1f} ms {theirs * 1000:12.1f} ms "
                f"{ours / theirs:6.2f} {words / ours:8.0f}"
            )
            longest = (path, text, aligner.align(path, text, "Portuguese"))
        path, text, words = longest
        [result] = direct.align((load_audio(path), SAMPLE_RATE), text, "Portuguese")
        pieces = [(item.text, item.start_time, item.end_time) for item in result]
        split = direct.aligner_processor.tokenize_space_lang

        def around_qwen_asr():
            seconds = len(load_audio(path)) / SAMPLE_RATE
            return [clipped(*word, seconds) for word in words_with_punctuation(text, pieces, split)]

        added, subtitles = median_seconds(around_qwen_asr, lambda: (to_srt(words), to_webvtt(words)), runs=args.runs)
        print(f"Aligner.align adds for {len(words)} words (reads the file, times back to words): {added * 1000:.1f} ms")
        print(f"SRT + WebVTT for {len(words)} words: {subtitles * 1000:.1f} ms")


if __name__ == "__main__":
    main()
