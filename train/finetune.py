"""The pieces of a fine-tuning round that are not data: the trainable model, checkpoints qwen-asr loads, the record
eval reads, the loss curve and the model card.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from qwen_asr.core.transformers_backend import Qwen3ASRForConditionalGeneration
from transformers import TrainerCallback
from transformers.modeling_outputs import CausalLMOutput
from transformers.utils import cached_file

from asr_pt.markdown import table
from asr_pt.models import TRAINING_RECORD
from train.collator import IGNORE_INDEX
from train.data import MAX_CHARACTERS, MAX_SECONDS, MIN_SECONDS

LOSS_CURVE = "loss_curve.png"
TRAINING_LOG = "training_log.jsonl"
# What `Qwen3ASRModel.from_pretrained` reads besides the weights; copied from the base model byte for byte, so the
# fine-tuned model tokenizes and prompts exactly as the base did.
PROCESSOR_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "preprocessor_config.json",
    "processor_config.json",
    "generation_config.json",
)


class Qwen3ASRForTraining(Qwen3ASRForConditionalGeneration):
    """Qwen3-ASR with the forward pass `Trainer` calls; qwen-asr's outer model only has `generate`.

    The weights and their names are the outer model's, so checkpoints load back as `Qwen3ASRForConditionalGeneration`.
    The pass is the thinker's own (audio features scattered into the audio placeholders, the same position ids), but
    the vocabulary projection runs only where there is a label: the audio and prompt positions, most of a sequence,
    would each cost a 151k-wide row of logits for nothing. The loss is the sum over target tokens divided by the
    number of target tokens in the whole accumulated step (`num_items_in_batch`, counted by `Trainer`), so every
    target token weighs the same whatever the gradient accumulation and the number of processes.
    """

    accepts_loss_kwargs = True

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        input_features: torch.Tensor,
        feature_attention_mask: torch.Tensor,
        labels: torch.Tensor,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> CausalLMOutput:
        thinker = self.thinker
        embeddings = thinker.get_input_embeddings()(input_ids)
        audio = thinker.get_audio_features(input_features.to(self.dtype), feature_attention_mask=feature_attention_mask)
        placeholders = thinker.get_placeholder_mask(input_ids, inputs_embeds=embeddings)
        embeddings = embeddings.masked_scatter(placeholders, audio.to(embeddings.dtype))
        position_ids, _ = thinker.get_rope_index(attention_mask)
        hidden = thinker.model(
            inputs_embeds=embeddings, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
        ).last_hidden_state
        next_tokens = labels[:, 1:]
        supervised = next_tokens != IGNORE_INDEX
        logits = thinker.lm_head(hidden[:, :-1][supervised]).float()
        loss = torch.nn.functional.cross_entropy(logits, next_tokens[supervised], reduction="sum")
        loss = loss / (num_items_in_batch if num_items_in_batch is not None else supervised.sum())
        return CausalLMOutput(loss=loss, logits=logits)


def load_processor(model_id: str):
    """The processor exactly as `Qwen3ASRModel.from_pretrained` loads it, so training tokenizes as inference does."""
    from qwen_asr import Qwen3ASRModel  # noqa: F401  (registers the Qwen3-ASR classes with transformers' Auto*)
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(model_id, fix_mistral_regex=True)


def load_for_training(base_model: str, dtype: torch.dtype):
    """The base model as `Qwen3ASRForTraining`, and its processor."""
    processor = load_processor(base_model)
    return Qwen3ASRForTraining.from_pretrained(base_model, dtype=dtype), processor


def _base_file(base_model: str, name: str) -> str | None:
    return cached_file(base_model, name, _raise_exceptions_for_missing_entries=False)


def finish_checkpoint(folder: str | Path, base_model: str, record: dict) -> Path:
    """Make a folder of saved weights a checkpoint `Qwen3ASRModel.from_pretrained` loads like the base model.

    The base's processor files are copied, and config.json keeps the base's `architectures` and
    `transformers_version`: transformers 4.57.6 swaps the tokenizer's pre-tokenizer on loading when that version is
    between 4.57.2 and 5.0, so a checkpoint stamped with the training run's version could tokenize differently from
    its base. Writes `asr_pt_training.json` (the record eval reads to tell held-out data from trained-on data).
    """
    folder = Path(folder)
    for name in PROCESSOR_FILES:
        source = _base_file(base_model, name)
        if source is not None:
            shutil.copyfile(source, folder / name)
    with open(_base_file(base_model, "config.json"), encoding="utf-8") as f:
        base_config = json.load(f)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    for key in ("architectures", "transformers_version"):
        if key in base_config:
            config[key] = base_config[key]
        else:
            config.pop(key, None)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (folder / TRAINING_RECORD).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return folder


class FinishCheckpoints(TrainerCallback):
    """Every checkpoint `Trainer` saves becomes loadable by qwen-asr and carries the training record."""

    def __init__(self, base_model: str, record: dict):
        self.base_model = base_model
        self.record = record

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            finish_checkpoint(Path(args.output_dir) / f"checkpoint-{state.global_step}", self.base_model, self.record)
        return control


class EvaluateLastStep(TrainerCallback):
    """With `--eval-steps`, the last step is validated too, so the final weights can be chosen as the best."""

    def on_step_end(self, args, state, control, **kwargs):
        if args.eval_strategy == "steps" and state.global_step >= state.max_steps:
            control.should_evaluate = True
        return control


def plot_loss(log_history: list[dict], path: str | Path) -> Path:
    """Training and validation loss against the optimizer step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    for key, label in (("loss", "training"), ("eval_loss", "validation")):
        points = [(entry["step"], entry[key]) for entry in log_history if key in entry]
        if points:
            steps, losses = zip(*points, strict=True)
            axes.plot(steps, losses, marker="o" if len(points) < 30 else None, label=label)
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss (per target token)")
    axes.set_yscale("log")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return Path(path)


def write_log(log_history: list[dict], path: str | Path) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for entry in log_history:
            f.write(json.dumps(entry) + "\n")
    return Path(path)


def evaluate_checkpoint(
    checkpoint: str | Path, base_model: str, specs: list[str], output_dir: str | Path, max_new_tokens: int = 512
) -> str:
    """The base model and the checkpoint through eval on `specs`; returns the card's table (the Results section
    of eval's report.md, which also marks a dataset the checkpoint was trained or selected on as not held out)."""
    from eval.report import REPORT_FILE
    from eval.run import evaluate

    models = {"base": base_model, "fine-tuned": str(checkpoint)}
    evaluate(models, specs, output_dir, max_new_tokens=max_new_tokens, verbose=False)
    report = (Path(output_dir) / REPORT_FILE).read_text(encoding="utf-8")
    results = report.split("\n## Results\n", 1)[1].split("\n## ", 1)[0].strip()
    link = Path(output_dir).name + "/" + REPORT_FILE
    return f"{results}\n\nIntervals, notes and the worst utterances: [{link}]({link})."


def model_card(
    *,
    base_model: str,
    record: dict,
    counts_table: str,
    hyperparameters: dict,
    best: dict,
    eval_table: str | None = None,
) -> str:
    """The checkpoint's README.md: what it was trained from and on, how, and (when measured) how well it does."""
    specs = "\n".join(f"- `{spec}`" for spec in record["trained_on"]) or "- (none)"
    selected = ", ".join(f"`{spec}`" for spec in record["selected_on"])
    holdout = ", ".join(f"`{spec}`" for spec in record["holdout"]) or "none given"
    if selected:
        selection = f"Best checkpoint by validation loss on {selected}: step {best['step']}, loss {best['loss']:.4f}."
    else:
        selection = f"No validation set: this is the last checkpoint (step {best['step']})."
    hyperparameter_table = table(["hyperparameter", "value"], list(hyperparameters.items()))
    evaluation = eval_table or "Not evaluated in this run (`python -m train --eval-after SPEC` adds the table)."
    return f"""---
base_model: {base_model}
language: pt
library_name: transformers
pipeline_tag: automatic-speech-recognition
tags:
- qwen3-asr
- asr-pt
---

# Fine-tune of {base_model}

Trained with `python -m train` from asr-pt. Targets are the written form of each transcript
(`language Portuguese<asr_text>` + text + `<|im_end|>`; only those tokens are in the loss).

## Data

{specs}

Held out (never trained on, by audio hash and by sentence): {holdout}. Clips of {MIN_SECONDS:g}-{MAX_SECONDS:g} s with
transcripts of at most {MAX_CHARACTERS} characters; test splits are never trained on.

{counts_table}

## Training

{hyperparameter_table}

{selection}

![loss curve]({LOSS_CURVE})

## Evaluation

{evaluation}
"""
