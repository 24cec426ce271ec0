"""`python -m asr_pt`: the library's command line, one subcommand per job."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def _tiny_model(args: argparse.Namespace) -> None:
    from asr_pt.tiny_model import build_tiny_model

    print(build_tiny_model(args.out_dir, seed=args.seed))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m asr_pt", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    tiny = commands.add_parser("tiny-model", help="write a tiny random Qwen3-ASR checkpoint for tests and trials")
    tiny.add_argument("out_dir", help="folder to write the checkpoint to")
    tiny.add_argument("--seed", type=int, default=0, help="different seeds give different weights")
    tiny.set_defaults(run=_tiny_model)

    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)
