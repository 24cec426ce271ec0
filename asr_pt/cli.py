"""`python -m asr_pt`: the library's command line, one subcommand per job."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from asr_pt.models import BASE_MODEL, FINETUNED_MODEL
from asr_pt.random_model import SIZES
from asr_pt.settings import settings_table


class DefaultsHelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """`--help` shows each option's default, where it has one its help does not already explain."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        unset = action.default is None or action.default is False or action.default == []
        if unset or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _tiny_model(args: argparse.Namespace) -> None:
    from asr_pt.tiny_model import LEARNABLE, build_tiny_model

    print(build_tiny_model(args.out_dir, seed=args.seed, **LEARNABLE))


def _random_model(args: argparse.Namespace) -> None:
    from asr_pt.random_model import build_random_model

    folder, parameters = build_random_model(args.out_dir, size=args.size, seed=args.seed)
    print(f"{folder}: {parameters:,} parameters ({args.size}, random bfloat16 weights)")


def _tiny_aligner(args: argparse.Namespace) -> None:
    from asr_pt.tiny_aligner import build_tiny_aligner

    print(build_tiny_aligner(args.out_dir, seed=args.seed))


def _import(args: argparse.Namespace) -> None:
    from asr_pt.models import ASRModel
    from asr_pt.review.importer import import_dataset
    from asr_pt.review.store import ReviewStore
    from asr_pt.shards import launched

    shard = launched()  # under torchrun: this process's share of the clips
    store = ReviewStore(args.data_dir)
    sizes = {"max_batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens, "device": shard.device(None)}
    finetuned, base = ASRModel(args.finetuned_model, **sizes), ASRModel(args.base_model, **sizes)
    summary = import_dataset(
        store, args.dataset, finetuned, base, limit=args.limit, batch_size=args.batch_size, shard=shard
    )
    if not shard.main:
        return
    print(f"queued {summary.queued} clips, {summary.already_queued} were queued already, {store.counts()}")
    for problem in summary.unreadable:
        print(f"left out (unreadable): {problem}")


def _export(args: argparse.Namespace) -> None:
    from asr_pt.review.export import export_dataset
    from asr_pt.review.store import ReviewStore

    summary = export_dataset(ReviewStore(args.data_dir, create=False), args.out_dir)
    print(
        f"exported {summary.items} corrected items ({summary.hours:.2f} h, {summary.test_items} from test splits) "
        f"to {summary.folder}"
    )


def _hash_password(args: argparse.Namespace) -> None:
    import getpass
    import sys

    from asr_pt.review.reviewers import hash_password

    try:
        password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline()
    except (EOFError, KeyboardInterrupt):
        password = ""
    password = password.rstrip("\r\n")  # a line typed or piped on Windows ends in \r\n
    if not password.strip():
        sys.exit("python -m asr_pt hash-password: error: the password is blank; type one (or pipe it in)")
    print(f"{args.name}:{hash_password(password)}")


def _settings(args: argparse.Namespace) -> None:
    print(settings_table())


def reviewer_name(text: str) -> str:
    """A name that fits a `name:hash` entry of ASR_PT_REVIEWERS (a line of a file, or one of comma-separated ones)."""
    name = text.strip()
    if not name or any(mark in name for mark in ":,\n") or name.startswith("#"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: a reviewer name must be non-blank, without ':' or ',' or a leading '#'"
        )
    return name


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m asr_pt", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    tiny = commands.add_parser(
        "tiny-model",
        help="write a tiny random Qwen3-ASR checkpoint (one that can learn a few clips) for tests and trials",
    )
    tiny.add_argument("out_dir", help="folder to write the checkpoint to")
    tiny.add_argument("--seed", type=int, default=0, help="different seeds give different weights")
    tiny.set_defaults(run=_tiny_model)

    random = commands.add_parser(
        "random-model", help="write a random Qwen3-ASR checkpoint at a real model's shapes, to size and time things"
    )
    random.add_argument("out_dir", help="folder to write the checkpoint to")
    random.add_argument("--size", choices=SIZES, default="1.7b", help="whose shapes: tiny, Qwen3-ASR-0.6B or -1.7B")
    random.add_argument("--seed", type=int, default=0, help="different seeds give different weights")
    random.set_defaults(run=_random_model)

    aligner = commands.add_parser("tiny-aligner", help="write a tiny random Qwen3-ForcedAligner checkpoint for tests")
    aligner.add_argument("out_dir", help="folder to write the checkpoint to")
    aligner.add_argument("--seed", type=int, default=0, help="different seeds give different weights")
    aligner.set_defaults(run=_tiny_aligner)

    data_dir = {"default": None, "help": "the review store's folder (default: $ASR_PT_DATA_DIR or ./data)"}
    queue = commands.add_parser("import", help="transcribe a dataset with both models and queue it for review")
    queue.add_argument("--data-dir", **data_dir)
    queue.add_argument("--dataset", required=True, help="corpus SPEC: [NAME=]SOURCE[?config=..&split=..]")
    queue.add_argument("--limit", type=int, default=None, help="queue at most this many clips")
    queue.add_argument("--batch-size", type=int, default=16, help="clips per model call")
    queue.add_argument("--max-new-tokens", type=int, default=512, help="longest transcript a model may write")
    queue.add_argument("--finetuned-model", default=FINETUNED_MODEL, help="hub id or folder of the fine-tuned model")
    queue.add_argument("--base-model", default=BASE_MODEL, help="hub id or folder of the base model")
    queue.set_defaults(run=_import)

    export = commands.add_parser("export", help="write the corrected items as a dataset (parquet, SFT JSONL, card)")
    export.add_argument("--data-dir", **data_dir)
    export.add_argument("out_dir", help="folder to write the dataset to")
    export.set_defaults(run=_export)

    hashing = commands.add_parser(
        "hash-password", help="print a reviewer's `name:hash` entry for ASR_PT_REVIEWERS (asks for the password)"
    )
    hashing.add_argument("name", type=reviewer_name, help="the reviewer's login name")
    hashing.set_defaults(run=_hash_password)

    listing = commands.add_parser("settings", help="print the environment variables the project reads (README's table)")
    listing.set_defaults(run=_settings)

    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)
