"""Training figures on the tiny model: data preparation rate, collator rate and training samples per second.

python bench/train_throughput.py              # 16 espeak-ng clips, batch 8, 20 steps
python bench/train_throughput.py --steps 40

The real-size step time (1.7B, batch 8, bf16, gradient checkpointing) needs a GPU; this script measures the CPU tiny
model only.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def make_clips(folder: Path, count: int) -> Path:
    from asr_pt.espeak import speak
    from asr_pt.tiny_model import SENTENCES_PATH

    sentences = SENTENCES_PATH.read_text(encoding="utf-8").splitlines()[:count]
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file_name", "sentence"])
        for i, sentence in enumerate(sentences):
            speak(sentence, folder / f"clip{i:02d}.wav")
            writer.writerow([f"clip{i:02d}.wav", sentence])
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    from asr_pt.tiny_model import LEARNABLE, build_tiny_model
    from train.collator import SFTCollator
    from train.data import prepare
    from train.finetune import load_processor

    with tempfile.TemporaryDirectory() as tmp:
        clips = make_clips(Path(tmp), args.clips)
        model = build_tiny_model(Path(tmp) / "tiny", seed=1, **LEARNABLE)

        start = time.perf_counter()
        examples, _ = prepare([str(clips)], progress=False)
        seconds = time.perf_counter() - start
        audio = sum(e.seconds for e in examples)
        print(f"data preparation (read, header, decode, hash, filters): {len(examples) / seconds:.0f} clips/s, "
              f"{audio / seconds:.0f} s of audio per second")  # fmt: skip

        collator = SFTCollator(load_processor(str(model)))
        rows = [{"audio": e.audio, "text": e.text} for e in examples]
        batches = [rows[i : i + args.batch_size] for i in range(0, len(rows), args.batch_size)]
        start = time.perf_counter()
        for batch in batches:
            collator(batch)
        seconds = time.perf_counter() - start
        print(f"collator (decode, features, tokens, labels): {len(rows) / seconds:.0f} samples/s")

        output = Path(tmp) / "run"
        command = [
            sys.executable, "-m", "train", "--base-model", str(model), "--dataset", str(clips), "--output",
            str(output), "--max-steps", str(args.steps), "--batch-size", str(args.batch_size), "--grad-accum", "1",
            "--lr", "1e-2", "--eval-steps", str(10 * args.steps), "--logging-steps", "5",
        ]  # fmt: skip
        subprocess.run(command, cwd=REPO, check=True, capture_output=True)
        summary = json.loads((output / "training_log.jsonl").read_text().splitlines()[-1])
        print(
            f"training, tiny model ({args.batch_size} per step, float32, {os.cpu_count()} CPU cores): "
            f"{summary['train_samples_per_second']:.1f} samples/s, {summary['train_steps_per_second']:.2f} steps/s "
            f"over {args.steps} steps"
        )


if __name__ == "__main__":
    main()
