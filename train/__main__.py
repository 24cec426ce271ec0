"""`python -m train`: one fine-tuning round of Qwen3-ASR on the reviewers' corrections and any other corpora.

Read it top to bottom: arguments, data, model, Trainer, best checkpoint, model card. The defaults are the round that
produced the model card (lr 2e-5 linear, warmup 0.02, per-device batch 92, gradient accumulation 2, 4 epochs, bf16,
gradient checkpointing, fused AdamW, best checkpoint by validation loss). More than one GPU: the same command under
`torchrun --nproc_per_node=N -m train ...` or `accelerate launch -m train ...` (Trainer's DDP).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from asr_pt.cli import DefaultsHelpFormatter
from asr_pt.models import FINETUNED_MODEL

# ----------------------------------------------------------------------------------------------------------------------
# arguments

parser = argparse.ArgumentParser(
    prog="python -m train", description=__doc__.split("\n")[0], formatter_class=DefaultsHelpFormatter
)
parser.add_argument("--base-model", default=FINETUNED_MODEL, help="hub id or folder to start from")
parser.add_argument("--corrections", help="the review store's data folder, or a folder it exported")
parser.add_argument("--dataset", action="append", default=[], metavar="SPEC", help="more training data (repeatable)")
parser.add_argument("--validation", action="append", default=[], metavar="SPEC", help="best checkpoint chosen on it")
parser.add_argument("--holdout", action="append", default=[], metavar="SPEC", help="never trained on (repeatable)")
parser.add_argument("--output", default="runs/train", help="folder for the best checkpoint, card, logs and plot")
parser.add_argument("--epochs", type=float, default=4.0, help="passes over the training data")
parser.add_argument("--max-steps", type=int, default=-1, help="optimizer steps; overrides --epochs when > 0")
parser.add_argument("--lr", type=float, default=2e-5, help="peak learning rate")
parser.add_argument("--lr-scheduler", default="linear", help="Trainer's lr_scheduler_type")
parser.add_argument("--warmup-ratio", type=float, default=0.02, help="share of the steps spent warming up")
parser.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
parser.add_argument("--batch-size", type=int, default=92, help="per device")
parser.add_argument("--grad-accum", type=int, default=2, help="batches per optimizer step")
parser.add_argument("--eval-steps", type=int, help="validate and save every N steps (default: every epoch)")
parser.add_argument("--logging-steps", type=int, default=10, help="log the training loss every N steps")
parser.add_argument("--save-total-limit", type=int, default=2, help="checkpoints kept (the best is always kept)")
parser.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, help="default: on GPU")
parser.add_argument("--workers", type=int, help="data loader processes (default: 4 on GPU, 0 on CPU)")
parser.add_argument("--limit", type=int, help="at most N examples per source (for trials)")
parser.add_argument("--seed", type=int, default=0, help="for the data order and initialisation")
parser.add_argument("--resume", nargs="?", const=True, default=None, help="resume the latest (or the given) checkpoint")
parser.add_argument("--eval-after", action="append", default=[], metavar="SPEC", help="evaluate the result on it")
parser.add_argument("--eval-max-new-tokens", type=int, default=512, help="longest transcript in --eval-after")
args = parser.parse_args()

if not args.corrections and not args.dataset:
    parser.error("nothing to train on: give --corrections DIR and/or --dataset SPEC")

from transformers import Trainer, TrainingArguments  # noqa: E402  (after argparse, so --help is instant)

from asr_pt.corpora import CorpusError  # noqa: E402
from asr_pt.models import release_memory  # noqa: E402
from train import data as training_data  # noqa: E402
from train import finetune  # noqa: E402
from train.collator import SFTCollator  # noqa: E402

on_gpu = torch.cuda.is_available()
output = Path(args.output)
training_args = TrainingArguments(
    output_dir=str(output / "checkpoints"),
    num_train_epochs=args.epochs,
    max_steps=args.max_steps,
    learning_rate=args.lr,
    lr_scheduler_type=args.lr_scheduler,
    warmup_ratio=args.warmup_ratio,
    weight_decay=args.weight_decay,
    per_device_train_batch_size=args.batch_size,
    per_device_eval_batch_size=args.batch_size,
    gradient_accumulation_steps=args.grad_accum,
    bf16=on_gpu,
    gradient_checkpointing=on_gpu if args.gradient_checkpointing is None else args.gradient_checkpointing,
    optim="adamw_torch_fused" if on_gpu else "adamw_torch",
    eval_strategy=("steps" if args.eval_steps else "epoch") if args.validation else "no",
    eval_steps=args.eval_steps,
    save_strategy="steps" if args.eval_steps else "epoch",
    save_steps=args.eval_steps,
    save_total_limit=args.save_total_limit,
    load_best_model_at_end=bool(args.validation),
    metric_for_best_model="eval_loss",
    greater_is_better=False,
    prediction_loss_only=True,  # validation needs the loss only; keeping logits over a 151k vocabulary would not fit
    logging_steps=args.logging_steps,
    dataloader_num_workers=(4 if on_gpu else 0) if args.workers is None else args.workers,
    remove_unused_columns=False,  # rows are {"audio", "text"}; the collator makes the model's inputs
    report_to="none",
    seed=args.seed,
)
main_process = training_args.process_index == 0


def say(*message) -> None:
    if main_process:
        print(*message, flush=True)


# ----------------------------------------------------------------------------------------------------------------------
# data: corrections and corpora, written-form targets, filters, held-out sets kept out

try:
    train_specs = ([training_data.corrections_spec(args.corrections)] if args.corrections else []) + args.dataset
    holdout = training_data.read_fingerprints(args.holdout, progress=main_process)
    say(f"held out: {len(holdout.hashes)} clips, {len(holdout.sentences)} sentences from {len(args.holdout)} sets")
    validation, validation_counts = training_data.prepare(args.validation, holdout=holdout, progress=main_process)
    if args.validation and not validation:
        sys.exit(f"the validation sets left nothing to validate on:\n{training_data.counts_table(validation_counts)}")
    train, train_counts = training_data.prepare(
        train_specs,
        holdout=holdout,
        validation=training_data.Fingerprints.of(validation),
        limit=args.limit,
        progress=main_process,
    )
except CorpusError as error:
    sys.exit(f"python -m train: error: {error}")
say("training data\n" + training_data.counts_table(train_counts))
if validation:
    say("validation data\n" + training_data.counts_table(validation_counts))
if not train:
    sys.exit(f"no training examples are left after the filters:\n{training_data.counts_table(train_counts)}")

record = {
    "base_model": args.base_model,
    "trained_on": [training_data.resolve_spec(spec) for spec in train_specs],
    "selected_on": [training_data.resolve_spec(spec) for spec in args.validation],
    "holdout": [training_data.resolve_spec(spec) for spec in args.holdout],
    "counts": {
        "train": {name: c.as_dict() for name, c in train_counts.items()},
        "validation": {name: c.as_dict() for name, c in validation_counts.items()},
        "holdout": {"clips": len(holdout.hashes), "sentences": len(holdout.sentences)},
    },
}


def rows(examples: list[training_data.TrainingExample]) -> list[dict]:
    return [{"audio": example.audio, "text": example.text} for example in examples]


# ----------------------------------------------------------------------------------------------------------------------
# model

model, processor = finetune.load_for_training(args.base_model, torch.bfloat16 if on_gpu else torch.float32)
say(f"{args.base_model}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")

# ----------------------------------------------------------------------------------------------------------------------
# training

trainer = Trainer(
    model=model,
    args=training_args,
    train_dataset=rows(train),
    eval_dataset=rows(validation) or None,
    data_collator=SFTCollator(processor),
    callbacks=[finetune.FinishCheckpoints(args.base_model, record), finetune.EvaluateLastStep()],
)
trainer.train(resume_from_checkpoint=args.resume)

# ----------------------------------------------------------------------------------------------------------------------
# the best checkpoint (loaded back by Trainer when there is a validation set), its card, logs and loss curve

trainer.save_model(str(output))
if trainer.is_world_process_zero():
    finetune.finish_checkpoint(output, args.base_model, record)
    history = trainer.state.log_history
    finetune.write_log(history, output / finetune.TRAINING_LOG)
    finetune.plot_loss(history, output / finetune.LOSS_CURVE)
    best_step = int(Path(trainer.state.best_model_checkpoint).name.split("-")[-1]) if validation else None
    best = {"step": best_step or trainer.state.global_step, "loss": trainer.state.best_metric}
    hyperparameters = {
        "learning rate": f"{args.lr:g} ({args.lr_scheduler}, warmup {args.warmup_ratio:g})",
        "batch": f"{args.batch_size} per device x {args.grad_accum} accumulation x {training_args.world_size} devices",
        "epochs": f"{trainer.state.epoch:.2f} ({trainer.state.global_step} steps)",
        "precision": "bf16" if training_args.bf16 else "float32",
        "gradient checkpointing": training_args.gradient_checkpointing,
        "optimizer": str(training_args.optim.value),
        "seed": args.seed,
    }
    del trainer, model
    release_memory()  # eval loads the base model and the checkpoint afresh, one at a time
    eval_table = None
    if args.eval_after:
        eval_table = finetune.evaluate_checkpoint(
            output, args.base_model, args.eval_after, output / "eval", args.eval_max_new_tokens
        )
    card = finetune.model_card(
        base_model=args.base_model,
        record=record,
        counts_table=training_data.counts_table(train_counts),
        hyperparameters=hyperparameters,
        best=best,
        eval_table=eval_table,
    )
    (output / "README.md").write_text(card, encoding="utf-8")
    print(json.dumps({"output": str(output.resolve()), **best}), flush=True)
