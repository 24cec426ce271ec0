"""What one demo request can cost, with and without the demo's bounds (`asr_pt.ui.status.demo_model`).

1. The context: one transcription of a 5 s clip with contexts of growing token counts (each in a fresh process, so
   its peak memory is its own); the demo refuses more than MAX_CONTEXT_TOKENS.
2. The output: a tiny random model never writes an end token, like a real model stuck repeating itself; seconds for
   a 5 s clip at max_new_tokens 512 alone, and with the demo's cap of TOKENS_PER_SECOND per second of audio.

    python bench/demo_limits.py
"""

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from asr_pt.models import ASRModel  # noqa: E402
from asr_pt.tiny_model import build_tiny_model  # noqa: E402
from asr_pt.ui.status import MAX_CONTEXT_TOKENS, TOKENS_PER_SECOND  # noqa: E402

CLIP = (np.random.default_rng(0).standard_normal(16000 * 5) * 0.1).astype(np.float32)


def context_cost(model_dir: str, target_tokens: int) -> None:
    """Runs in a child process: prints tokens, seconds and peak memory of one transcription with that context."""
    model = ASRModel(model_dir, max_new_tokens=8)
    model.transcribe(CLIP)  # loaded and warm
    context = "Lisboa Sporting " * (target_tokens // 10)  # 10 tokens each
    tokens = len(model.load().processor.tokenizer(context).input_ids) if context else 0
    start = time.perf_counter()
    model.transcribe(CLIP, context=context)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"context of {tokens:>6,} tokens: {seconds:6.2f} s, peak memory {peak:6,.0f} MB")


def output_cost(model_dir: str) -> None:
    for label, model in (
        ("max_new_tokens 512 only", ASRModel(model_dir, max_new_tokens=512)),
        (f"and {TOKENS_PER_SECOND:g} tokens per second", ASRModel(model_dir, tokens_per_second=TOKENS_PER_SECOND)),
    ):
        model.transcribe(CLIP[:16000])  # loaded and warm
        start = time.perf_counter()
        transcript = model.transcribe(CLIP)
        print(f"5 s clip, {label}: {time.perf_counter() - start:.2f} s (cut short: {transcript.truncated})")


def main() -> None:
    if len(sys.argv) == 3:
        return context_cost(sys.argv[1], int(sys.argv[2]))
    with tempfile.TemporaryDirectory() as folder:
        model_dir = str(build_tiny_model(Path(folder) / "tiny", seed=1))
        print(f"The demo refuses contexts over {MAX_CONTEXT_TOKENS} tokens.")
        for tokens in (0, 100, MAX_CONTEXT_TOKENS, 2000, 10000):
            subprocess.run([sys.executable, __file__, model_dir, str(tokens)], check=True)
        output_cost(model_dir)


if __name__ == "__main__":
    main()
