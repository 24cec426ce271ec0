"""Eval's own cost against raw greedy `generate` on the same batches (goal: at most 5% more).

    python bench/eval_overhead.py [--clips 32] [--repeats 3] [--max-new-tokens 32] [--device cuda] [--model ID]

Both sides load the same checkpoint once, decode the same clips beforehand, warm up on one batch and then run the
same batches (8 clips, the card's default) through the processor, `generate(do_sample=False)` and
`batch_decode(skip_special_tokens=True)`, as the seed author's `evaluate_model` does. Two figures:
- inference: the transcription seconds eval records (`seconds` in predictions.jsonl, summed) against the raw loop's;
- whole run: `eval.run.evaluate` from start to report (reading the corpus, decoding audio, the model load, warm-up,
  scores, bootstrap, report and plots) against the raw loop plus the same load, decode and warm-up.
Runs alternate (raw, eval, raw, eval...) and the medians are compared.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from asr_pt.audio import load_audio  # noqa: E402
from asr_pt.models import ASRModel  # noqa: E402
from bench.eval_throughput import model_and_clips, model_options  # noqa: E402
from eval.run import BATCH_SIZE, evaluate  # noqa: E402


def raw_run(model_id: str, files: list[Path], max_new_tokens: int, device: str | None) -> tuple[float, float]:
    """(whole seconds, inference seconds) of the author's loop written out by hand."""
    start = time.perf_counter()
    wrapper = ASRModel(model_id, device=device).load()  # the project's one loading path
    model, processor = wrapper.model, wrapper.processor
    audios = [load_audio(str(path)) for path in files]
    messages = [[{"role": "system", "content": ""}, {"role": "user", "content": [{"type": "audio", "audio": None}]}]]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)[0]
    prompt += "language Portuguese<asr_text>"

    def generate(batch):
        inputs = processor(text=[prompt] * len(batch), audio=batch, return_tensors="pt", padding=True)
        inputs = {k: v.to(model.device, model.dtype if v.is_floating_point() else None) for k, v in inputs.items()}
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new = out.sequences[:, inputs["input_ids"].shape[1] :]
        return [t.strip() for t in processor.batch_decode(new, skip_special_tokens=True)]

    generate(audios[:BATCH_SIZE])  # warm-up, as eval does
    inference = time.perf_counter()
    for i in range(0, len(audios), BATCH_SIZE):
        generate(audios[i : i + BATCH_SIZE])
    now = time.perf_counter()
    return now - start, now - inference


def eval_run(model_id: str, corpus: Path, output: Path, max_new_tokens: int, device: str | None) -> tuple[float, float]:
    start = time.perf_counter()
    evaluate({"m": model_id}, [f"clips={corpus}"], output, max_new_tokens=max_new_tokens, device=device, verbose=False)
    whole = time.perf_counter() - start
    rows = [json.loads(line) for line in (output / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    return whole, sum(row["seconds"] for row in rows)


def main() -> None:
    parser = model_options(__doc__, clips=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        model, corpus = model_and_clips(temp, args.model, args.clips)
        files = sorted(corpus.glob("*.wav"))
        raw, ours = [], []
        for repeat in range(args.repeats):
            raw.append(raw_run(model, files, args.max_new_tokens, args.device))
            ours.append(eval_run(model, corpus, temp / f"out-{repeat}", args.max_new_tokens, args.device))
    for label, index in (("inference", 1), ("whole run", 0)):
        raw_s, eval_s = statistics.median(r[index] for r in raw), statistics.median(o[index] for o in ours)
        print(f"{label:>10}: raw generate {raw_s:7.2f} s, eval {eval_s:7.2f} s, ratio {eval_s / raw_s:.3f}")
    print(f"({args.clips} clips, batch {BATCH_SIZE}, max_new_tokens {args.max_new_tokens}, medians of {args.repeats})")


if __name__ == "__main__":
    main()
