"""The GPU run (`bash bench/gpu.sh OUT_DIR`): the 1.7B shape built on the machine, then eval throughput, the app's
side-by-side latency and one training step at the card's batch, printed and written to OUT_DIR/gpu.json.

No network: the checkpoint is random (`asr_pt.random_model`) and the clips are espeak-ng Portuguese. Random weights
never stop on their own, so every clip writes `--tokens-per-second` x its length new tokens (4/s, a transcript's
length). On a machine without a GPU it runs the same code on CPU (the test suite does, at `--size tiny`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asr_pt.audio import SAMPLE_RATE, load_audio  # noqa: E402
from asr_pt.compare import compare  # noqa: E402
from asr_pt.espeak import speak_corpus  # noqa: E402
from asr_pt.models import ASRModel, default_device, default_dtype, release_memory  # noqa: E402
from asr_pt.random_model import SIZES, build_random_model  # noqa: E402
from asr_pt.tiny_model import SENTENCES_PATH  # noqa: E402
from eval.run import evaluate  # noqa: E402
from train.collator import SFTCollator  # noqa: E402
from train.finetune import Qwen3ASRForTraining, load_processor  # noqa: E402

# The round that produced the model card: 61,579 clips, 4 epochs, per-device batch 92, gradient accumulation 2.
CARD_CLIPS, CARD_EPOCHS, CARD_BATCH = 61_579, 4, 92


def make_clips(folder: Path, count: int) -> Path:
    """`count` espeak-ng clips (a shipped sentence each, a few seconds) in an audiofolder with their sentences."""
    sentences = SENTENCES_PATH.read_text(encoding="utf-8").splitlines()
    return speak_corpus([sentences[index % len(sentences)] for index in range(count)], folder)


def eval_rtfx(model: str, clips: Path, out: Path, batch_sizes: list[int], tokens: int, device: str) -> dict:
    """RTFx as `python -m eval` reports it (after one untimed warm-up batch), per batch size."""
    rtfx = {}
    for batch_size in batch_sizes:
        results = evaluate(
            {"model": model}, [f"clips={clips}"], out / f"eval-{batch_size}", batch_size=batch_size,
            max_new_tokens=tokens, device=device, resamples=10, verbose=False,
        )  # fmt: skip
        rtfx[batch_size] = results["clips"]["model"]["rtfx"]
        release_memory()
    return rtfx


def side_by_side(model: str, clip: Path, tokens: int, repeats: int) -> dict:
    """The app's request (`asr_pt.compare.compare`, both models in turn) on one clip: median seconds after a warm-up."""
    finetuned, base = (ASRModel(model, max_new_tokens=tokens) for _ in range(2))
    compare(clip, finetuned, base)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        compare(clip, finetuned, base)
        seconds.append(time.perf_counter() - start)
    del finetuned, base
    release_memory()
    return {"median_seconds": statistics.median(seconds), "seconds": seconds}


def training_step(model_dir: str, clips: Path, batch_size: int, repeats: int, device: str) -> dict:
    """Forward, backward and AdamW step of `Qwen3ASRForTraining`, as `python -m train` runs it (float32 weights,
    bfloat16 autocast and fused AdamW on a GPU; gradient checkpointing). Halves the batch on out-of-memory."""
    processor = load_processor(model_dir)
    model = Qwen3ASRForTraining.from_pretrained(model_dir, dtype=torch.float32).to(device)
    model.gradient_checkpointing_enable()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, fused=device.startswith("cuda"))
    with open(clips / "metadata.csv", encoding="utf-8") as f:
        rows = [{"audio": load_audio(clips / r["file_name"]), "text": r["sentence"]} for r in csv.DictReader(f)]
    halved = []
    while True:
        try:
            return _timed_steps(model, optimizer, SFTCollator(processor), rows, batch_size, repeats, device) | {
                "halved_from": halved
            }
        except torch.OutOfMemoryError:
            halved.append(batch_size)
            optimizer.zero_grad(set_to_none=True)
            release_memory()
            if batch_size == 1:
                raise
            batch_size //= 2


def _timed_steps(model, optimizer, collator, rows: list[dict], batch_size: int, repeats: int, device: str) -> dict:
    batch = collator([rows[i % len(rows)] for i in range(batch_size)])
    batch = {key: value.to(device) for key, value in batch.items()}
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    seconds = []
    for _ in range(repeats + 1):  # the first step allocates the optimizer state and warms the kernels up
        start = time.perf_counter()
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=device.startswith("cuda")):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    step = statistics.median(seconds[1:])
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    # The card's round: 4 epochs over 61,579 clips in micro-batches of 92 (two per optimizer step; each step timed here
    # includes an optimizer update, so this errs a little high).
    round_hours = CARD_CLIPS * CARD_EPOCHS / batch_size * step / 3600
    return {"batch_size": batch_size, "step_seconds": step, "peak_gpu_gib": peak, "card_round_hours": round_hours}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", help="folder for the checkpoint, clips and gpu.json")
    parser.add_argument("--size", choices=SIZES, default="1.7b")
    parser.add_argument("--eval-batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--clips", type=int, default=64, help="eval clips")
    parser.add_argument("--train-batch", type=int, default=CARD_BATCH)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of the app request and training step")
    parser.add_argument("--tokens-per-second", type=float, default=4.0)
    args = parser.parse_args()

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = default_device()
    report = {"device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu"}
    report |= {"dtype": default_dtype(device), "size": args.size, "torch": torch.__version__}
    report["tokens_per_second"] = args.tokens_per_second

    start = time.perf_counter()
    model, parameters = build_random_model(out / "model", size=args.size)
    report["build"] = {"seconds": time.perf_counter() - start, "parameters": parameters}
    print(f"built {args.size}: {parameters:,} parameters in {report['build']['seconds']:.0f} s", flush=True)

    clips = make_clips(out / "clips", args.clips)
    eval_tokens = round(4 * args.tokens_per_second)  # espeak-ng speaks a shipped sentence in about 4 s
    rtfx = eval_rtfx(str(model), clips, out, args.eval_batches, eval_tokens, device)
    report["eval_rtfx"] = {str(batch): value for batch, value in rtfx.items()}
    print(f"eval RTFx ({report['device']}, {report['dtype']}): {rtfx}", flush=True)

    five_seconds = out / "clip5.wav"
    samples = np.concatenate([load_audio(clips / f"clip{i % args.clips:03d}.wav") for i in range(4)])
    sf.write(five_seconds, samples[: 5 * SAMPLE_RATE], SAMPLE_RATE)
    report["app_5s_clip"] = side_by_side(str(model), five_seconds, round(5 * args.tokens_per_second), args.repeats)
    print(f"app, a 5 s clip through both models: {report['app_5s_clip']['median_seconds']:.2f} s", flush=True)

    report["training_step"] = training_step(str(model), clips, args.train_batch, args.repeats, device)
    print(f"training step: {report['training_step']}", flush=True)

    (out / "gpu.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out / 'gpu.json'}")


if __name__ == "__main__":
    main()
