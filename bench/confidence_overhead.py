"""What word confidence costs generation: the same batches with and without it (goal: no measurable slow-down).

    flock /work/models/.real-size.lock python bench/confidence_overhead.py --model /work/models/random-1.7b --dtype int8
    python bench/confidence_overhead.py                      # tiny model, CPU

One model is loaded once; its `word_confidence` switch is flipped between runs, which alternate (with, without,
with...) over the same decoded clips in batches of 8 after one untimed warm-up batch. Each figure is the median of
the runs' wall seconds for all batches, confidence included: the log-softmax per generated token and, after
generation, the decode of each row into words.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asr_pt.audio import load_audio  # noqa: E402
from asr_pt.models import ASRModel  # noqa: E402
from bench.eval_throughput import model_and_clips, model_options  # noqa: E402
from eval.run import BATCH_SIZE  # noqa: E402


def main() -> None:
    parser = model_options(__doc__, clips=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        model_id, corpus = model_and_clips(Path(temp), args.model, args.clips)
        audios = [load_audio(str(path)) for path in sorted(corpus.glob("*.wav"))]
        model = ASRModel(model_id, device=args.device, dtype=args.dtype, max_new_tokens=args.max_new_tokens)
        batches = [audios[start : start + BATCH_SIZE] for start in range(0, len(audios), BATCH_SIZE)]
        model.generate_batch(batches[0])  # loads the model and warms up, untimed
        seconds: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.repeats):
            for with_confidence in (True, False):
                model.word_confidence = with_confidence
                start = time.perf_counter()
                words = sum(len(t.words) for batch in batches for t in model.generate_batch(batch))
                seconds[with_confidence].append(time.perf_counter() - start)
                assert words > 0 or not with_confidence
    audio = sum(len(a) for a in audios) / 16000
    print(f"{model_id} ({model.dtype}, {model.device}): {len(audios)} clips, {audio:.1f} s, batches of {BATCH_SIZE}")
    for label, runs in (("with", seconds[True]), ("without", seconds[False])):
        listed = ", ".join(f"{s:.2f}" for s in runs)
        print(f"{label} word confidence: median {statistics.median(runs):.2f} s (runs {listed})")
    print(f"ratio with / without: {statistics.median(seconds[True]) / statistics.median(seconds[False]):.3f}")


if __name__ == "__main__":
    main()
