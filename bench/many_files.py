"""Many files at once: both models over the same files in batches against one file at a time.

    python bench/many_files.py                        # tiny models, CPU, 16 files, batch 8 vs 1
    python bench/many_files.py --finetuned DIR --base DIR --device cuda --batch-size 16

This is the demo's own path (`asr_pt.batch.transcribe_many`: read, both models, WER per file), timed end to end
after a warm-up; the median of `--repeats` runs, batched and one-by-one interleaved. Clips are espeak-ng Portuguese.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # runs as a script, like bench/foundation.py

from asr_pt.batch import transcribe_many  # noqa: E402
from asr_pt.espeak import speak  # noqa: E402
from asr_pt.models import ASRModel  # noqa: E402
from asr_pt.tiny_model import SENTENCES_PATH, build_tiny_model  # noqa: E402
from asr_pt.uploads import Upload  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--finetuned", help="folder or hub id (default: a tiny random checkpoint built here)")
    parser.add_argument("--base", help="folder or hub id (default: a second tiny random checkpoint)")
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--device")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        ids = [args.finetuned or str(build_tiny_model(temp / "a", seed=1)), args.base]
        ids[1] = ids[1] or str(build_tiny_model(temp / "b", seed=2))
        models = [ASRModel(i, device=args.device, max_new_tokens=args.max_new_tokens) for i in ids]
        sentences = SENTENCES_PATH.read_text(encoding="utf-8").splitlines()
        uploads = [
            Upload(f"{i}.wav", speak(sentences[i % len(sentences)], temp / f"{i}.wav")) for i in range(args.files)
        ]
        times: dict[int, list[float]] = {args.batch_size: [], 1: []}
        transcribe_many(uploads[: args.batch_size], *models, batch_size=args.batch_size)  # warm-up
        for _ in range(args.repeats):
            for batch_size in times:
                start = time.perf_counter()
                rows = transcribe_many(uploads, *models, batch_size=batch_size)
                times[batch_size].append(time.perf_counter() - start)
        audio = sum(row.audio_seconds for row in rows)
    print(
        f"{args.files} files, {audio:.1f} s of audio, max_new_tokens {args.max_new_tokens}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for batch_size, runs in times.items():
        median = statistics.median(runs)
        print(f"batch {batch_size:>2}: {median:.2f} s (median of {len(runs)}), {args.files / median:.2f} files/s")
    print(f"batched / one by one: {statistics.median(times[1]) / statistics.median(times[args.batch_size]):.2f}x")


if __name__ == "__main__":
    main()
