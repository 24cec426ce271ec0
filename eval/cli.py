"""`python -m eval`: the model card's table, reproducible, for any models on any datasets.

    python -m eval --model zero-shot=Qwen/Qwen3-ASR-1.7B --model fine-tuned=yuriyvnv/Qwen3-ASR-1.7B-PT \
        --dataset "cv17=mozilla-foundation/common_voice_17_0?config=pt&split=test" --output runs/eval

Under `torchrun --nproc_per_node=N -m eval ...` the clips are split over the N processes (README: "Eval on many
GPUs"). The work is done by `eval.run.evaluate`; this module only reads the command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from asr_pt.cli import DefaultsHelpFormatter
from asr_pt.corpora import CorpusError
from asr_pt.models import DEFAULT_LANGUAGE, ModelLoadError
from asr_pt.shards import launched
from eval.run import BATCH_SIZE, MAX_NEW_TOKENS, evaluate
from eval.scores import RESAMPLES, EvaluationError


def parse_model(text: str) -> tuple[str, str]:
    """`NAME=ID_OR_DIR`, or a bare id or folder named after its last part."""
    name, equals, model_id = text.partition("=")
    if not equals:
        name, model_id = Path(text.rstrip("/")).name, text
    if not name or not model_id:
        raise argparse.ArgumentTypeError(f"--model {text!r}: expected NAME=ID_OR_DIR")
    return name, model_id


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument(
        "--model",
        type=parse_model,
        action="append",
        required=True,
        metavar="NAME=ID_OR_DIR",
        help="a hub id or checkpoint folder (repeatable); the first is the baseline the others are compared with",
    )
    parser.add_argument(
        "--dataset",
        action="append",
        required=True,
        metavar="SPEC",
        help="[NAME=]SOURCE[?config=..&split=..]: a hub id, audiofolder, Common Voice folder or store:DATA_DIR "
        "(repeatable)",
    )
    parser.add_argument("--output", default="runs/eval", help="folder for predictions, results and the report")
    parser.add_argument("--limit", type=int, help="only the first N clips of each dataset")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="clips per generate call (the card's: 8)")
    parser.add_argument("--language", default=DEFAULT_LANGUAGE, help='forced language, or "auto" to detect it')
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=MAX_NEW_TOKENS,
        help="longest transcript a model may write (the card's: 128)",
    )
    parser.add_argument("--device", help="cuda, cpu, cuda:1... (default: cuda when there is one)")
    parser.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], help="default: bfloat16 on GPU")
    parser.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples for the intervals")
    parser.add_argument(
        "--slice-by",
        action="append",
        metavar="COLUMN",
        help="score each model on every value of this dataset column, or 'duration' (repeatable; default: gender, "
        "age, accents, variant where the data has them, and duration)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> dict | None:
    parser = build_parser()
    args = parser.parse_args(argv)
    models = dict(args.model)
    if len(models) < len(args.model):
        parser.error("two --model arguments have the same name; give each its own NAME=")
    try:
        return evaluate(
            models,
            args.dataset,
            args.output,
            limit=args.limit,
            batch_size=args.batch_size,
            language=args.language,
            max_new_tokens=args.max_new_tokens,
            device=args.device,
            dtype=args.dtype,
            resamples=args.resamples,
            slice_by=args.slice_by,
            shard=launched(),
        )
    except (EvaluationError, CorpusError, ModelLoadError) as error:
        parser.exit(2, f"python -m eval: error: {error}\n")
