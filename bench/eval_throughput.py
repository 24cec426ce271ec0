"""Throughput of `python -m eval`'s inference: RTFx at several batch sizes over the same clips, and the speed-up.

    python bench/eval_throughput.py                                  # tiny model, CPU, batch sizes 1 and 16
    python bench/eval_throughput.py --batch-sizes 1 8 32 --device cuda
    python bench/eval_throughput.py --model yuriyvnv/Qwen3-ASR-1.7B-PT --device cuda

RTFx is measured by `eval.run.evaluate` itself (audio seconds / transcription seconds after a warm-up batch),
so the figures are the ones an evaluation reports. The clips are Portuguese sentences spoken by espeak-ng. The tiny
random model rarely emits an end token, so clips generate about --max-new-tokens tokens at every batch size.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # runs as a script, like bench/foundation.py

from asr_pt.espeak import speak
from asr_pt.tiny_model import SENTENCES_PATH, build_tiny_model
from eval.run import evaluate


def make_clips(folder: Path, count: int) -> Path:
    """`count` clips in an audiofolder: the shipped sentences, spoken at three speeds to make more of them."""
    sentences = SENTENCES_PATH.read_text(encoding="utf-8").splitlines()
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file_name", "sentence"])
        for index in range(count):
            sentence, speed = sentences[index % len(sentences)], (160, 130, 190)[index // len(sentences) % 3]
            speak(sentence, folder / f"clip{index:03d}.wav", words_per_minute=speed)
            writer.writerow([f"clip{index:03d}.wav", sentence])
    return folder


def model_and_clips(temp: Path, model: str | None, clips: int) -> tuple[str, Path]:
    """The model to run (a tiny random checkpoint built in `temp` unless one is given) and an audiofolder of clips."""
    (temp / "clips").mkdir()
    return model or str(build_tiny_model(temp / "tiny-model", seed=1)), make_clips(temp / "clips", clips)


def model_options(description: str, clips: int) -> argparse.ArgumentParser:
    """The options the eval benchmarks share: the model, how many clips, tokens and the device."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="hub id or folder (default: a tiny random checkpoint built here)")
    parser.add_argument("--clips", type=int, default=clips)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--device")
    return parser


def main() -> None:
    parser = model_options(__doc__, clips=64)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        model, corpus = model_and_clips(temp, args.model, args.clips)
        rtfx = {}
        for batch_size in args.batch_sizes:
            results = evaluate(
                {"model": model},
                [f"clips={corpus}"],
                temp / f"out-{batch_size}",
                batch_size=batch_size,
                max_new_tokens=args.max_new_tokens,
                device=args.device,
                resamples=100,
                verbose=False,
            )
            rtfx[batch_size] = results["clips"]["model"]["rtfx"]
            audio = results["clips"]["model"]["audio_seconds"]
            print(f"batch size {batch_size:>3}: RTFx {rtfx[batch_size]:8.2f} ({args.clips} clips, {audio:.1f} s audio)")
    first = args.batch_sizes[0]
    for batch_size in args.batch_sizes[1:]:
        print(f"batch size {batch_size} / batch size {first}: {rtfx[batch_size] / rtfx[first]:.2f}x")


if __name__ == "__main__":
    main()
