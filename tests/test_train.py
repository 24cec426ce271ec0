"""`python -m train`: it learns, it keeps held-out data out, and its checkpoints load and tokenize like the base."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from safetensors.torch import load_file

from train.finetune import LOSS_CURVE, TRAINING_LOG, TRAINING_RECORD, load_processor

REPO = Path(__file__).resolve().parents[1]
# transformers 4.57.6 swaps a tokenizer's first pre-tokenizer for its own regex when the checkpoint's config.json says
# it was saved by a version in (4.57.2, 5.0): the trap a fine-tuned checkpoint must not fall into. A base whose
# pre-tokenizer splits every character tokenizes visibly differently once swapped.
CHARACTER_REGEX = r"."
TEXT = "O gato dorme no sofá."


def run(module: str, *args: str, env: dict | None = None, launcher: list[str] | None = None) -> str:
    command = (launcher or [sys.executable, "-m"]) + [module, *map(str, args)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=environment, timeout=900)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done.stdout


def train(*args: str, **kwargs) -> str:
    return run("train", "--logging-steps", 1, "--workers", 0, *args, **kwargs)


@pytest.fixture(scope="module")
def old_style_base(tmp_path_factory, tiny_model_dir) -> Path:
    """A tiny base whose config says transformers 4.51.3, like many real checkpoints, so loading it keeps its own
    pre-tokenizer (one that splits every character), while loading a copy stamped 4.57.6 swaps it."""
    base = Path(shutil.copytree(tiny_model_dir, tmp_path_factory.mktemp("old-style") / "base"))
    tokenizer = json.loads((base / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {"Regex": CHARACTER_REGEX}
    (base / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    config = json.loads((base / "config.json").read_text(encoding="utf-8"))
    (base / "config.json").write_text(json.dumps({**config, "transformers_version": "4.51.3"}), encoding="utf-8")
    return base


def test_best_checkpoint_is_chosen_on_validation_loss_and_tokenizes_like_its_base(
    tmp_path, old_style_base, audiofolder_corpus, speech_clips
):
    validation = tmp_path / "validation"
    validation.mkdir()
    (validation / "metadata.csv").write_text(
        "file_name,sentence\n" + "".join(f"{p.name},{s}\n" for p, s in speech_clips[6:]), encoding="utf-8"
    )
    for path, _ in speech_clips[6:]:
        shutil.copy(path, validation)
    output = tmp_path / "run"
    # Training on all eight clips; the two validation clips are dropped from training (same audio) and counted.
    printed = train(
        "--base-model", old_style_base, "--dataset", f"{audiofolder_corpus}?split=train", "--validation", validation,
        "--output", output, "--max-steps", 6, "--eval-steps", 2, "--batch-size", 3, "--grad-accum", 1, "--lr", 3e-2,
        "--save-total-limit", 5, "--eval-after", validation, "--eval-max-new-tokens", 8,
    )  # fmt: skip

    history = [json.loads(line) for line in (output / TRAINING_LOG).read_text().splitlines()]
    evaluations = {entry["step"]: entry["eval_loss"] for entry in history if "eval_loss" in entry}
    assert sorted(evaluations) == [2, 4, 6]
    best_step = min(evaluations, key=evaluations.get)
    chosen = json.loads(printed.strip().splitlines()[-1])  # what train says it kept: the lowest logged loss
    assert (chosen["step"], chosen["loss"]) == (best_step, pytest.approx(evaluations[best_step]))
    final_weights = load_file(output / "model.safetensors")
    assert all(k.startswith("thinker.") for k in final_weights)
    for step in evaluations:  # the output's weights are the chosen checkpoint's, and no other one's
        weights = load_file(output / "checkpoints" / f"checkpoint-{step}" / "model.safetensors")
        assert weights.keys() == final_weights.keys()
        assert all((weights[k] == final_weights[k]).all() for k in final_weights) == (step == best_step)

    record = json.loads((output / TRAINING_RECORD).read_text())
    assert record["selected_on"] == [f"validation={validation}"]
    assert record["trained_on"] == [f"{audiofolder_corpus.name}-train={audiofolder_corpus}?split=train"]
    assert record["counts"]["train"][f"{audiofolder_corpus.name}-train"]["dropped"] == {"in validation (same audio)": 2}
    card = (output / "README.md").read_text()
    assert f"step {best_step}, loss {evaluations[best_step]:.4f}" in card
    assert (output / LOSS_CURVE).stat().st_size > 10_000
    evaluation = card.split("## Evaluation", 1)[1]  # eval's table: base vs this checkpoint, flagged as not held out
    assert "| validation | 2 |" in evaluation and "**no**: fine-tuned was selected on it" in evaluation

    # Every checkpoint folder, not only the final one, carries the record and the base's processor files.
    for folder in [output, *sorted((output / "checkpoints").glob("checkpoint-*"))]:
        assert json.loads((folder / TRAINING_RECORD).read_text()) == record
        config = json.loads((folder / "config.json").read_text())
        assert config["transformers_version"] == "4.51.3"
        assert config["architectures"] == ["Qwen3ASRForConditionalGeneration"]
        assert (folder / "tokenizer.json").read_bytes() == (old_style_base / "tokenizer.json").read_bytes()

    # The trap is real: stamped with this transformers' version, the base would tokenize differently...
    stamped = Path(shutil.copytree(old_style_base, tmp_path / "stamped"))
    config = json.loads((stamped / "config.json").read_text())
    (stamped / "config.json").write_text(json.dumps({**config, "transformers_version": "4.57.6"}))
    tokens = {name: load_processor(str(folder)).tokenizer.tokenize(TEXT) for name, folder in [
        ("base", old_style_base), ("stamped", stamped), ("trained", output)
    ]}  # fmt: skip
    assert tokens["stamped"] != tokens["base"]
    # ... and the trained checkpoint does not fall into it.
    assert tokens["trained"] == tokens["base"]


def test_resume_continues_from_the_last_checkpoint(tmp_path, tiny_model_dir, audiofolder_corpus):
    common = ["--base-model", tiny_model_dir, "--dataset", f"{audiofolder_corpus}?split=train", "--output",
              tmp_path / "run", "--batch-size", 4, "--grad-accum", 1, "--eval-steps", 2]  # fmt: skip
    train(*common, "--max-steps", 2)
    stdout = train(*common, "--max-steps", 4, "--resume")
    history = [json.loads(line) for line in (tmp_path / "run" / TRAINING_LOG).read_text().splitlines()]
    assert [entry["step"] for entry in history if "loss" in entry] == [1, 2, 3, 4]  # steps 1-2 from the first run
    assert json.loads(stdout.strip().splitlines()[-1])["step"] == 4


def test_two_processes_train_with_torchrun_on_cpu(tmp_path, tiny_model_dir, audiofolder_corpus):
    output = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517", "-m"]
    train(
        "--base-model", tiny_model_dir, "--dataset", f"{audiofolder_corpus}?split=train", "--output", output,
        "--max-steps", 2, "--batch-size", 2, "--grad-accum", 1, "--eval-steps", 100,
        launcher=torchrun,
    )  # fmt: skip
    history = [json.loads(line) for line in (output / TRAINING_LOG).read_text().splitlines()]
    assert [entry["step"] for entry in history if "loss" in entry] == [1, 2]
    assert "2 per device x 1 accumulation x 2 devices" in (output / "README.md").read_text()
    assert (output / "model.safetensors").exists() and (output / TRAINING_RECORD).exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "nothing to train on"),
        (["--corrections", "/nonexistent/store"], "no such folder"),
        (["--dataset", "{clips}?split=test"], "no training examples are left"),
        (["--dataset", "{clips}", "--validation", "{clips}?split=test"], "left nothing to validate on"),
    ],
)
def test_bad_requests_get_a_clear_message(arguments, message, audiofolder_corpus, tiny_model_dir):
    arguments = [a.format(clips=audiofolder_corpus) for a in arguments]
    done = subprocess.run(
        [sys.executable, "-m", "train", "--base-model", str(tiny_model_dir), *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr


def test_help_shows_the_defaults():
    shown = " ".join(run("train", "--help").split())  # as argparse wraps it
    for default in ("(default: 2e-05)", "(default: 92)", "(default: 4.0)", "(default: runs/train)", "(default: 0)"):
        assert default in shown


def test_the_loop_learns_corrections_made_in_the_store(tmp_path, learnable_tiny_model_dir, audiofolder_corpus):
    """Clips imported into a store, corrected there by a reviewer, exported, trained on, evaluated: WER falls from
    about 100% to at most 20% on those clips."""
    from asr_pt.models import ASRModel
    from asr_pt.review.importer import import_dataset
    from asr_pt.review.store import ReviewStore

    model = str(learnable_tiny_model_dir)
    store = ReviewStore(tmp_path / "store")
    untrained = ASRModel(model, max_new_tokens=24)
    summary = import_dataset(store, f"espeak={audiofolder_corpus}?split=train", untrained, untrained, progress=False)
    assert summary.queued == 8
    sentences = dict(csv_rows(audiofolder_corpus / "metadata.csv"))
    while (item := store.claim_next("ana")) is not None:
        store.save(item.id, "ana", sentences[item.source_id], item.version, verdict="both_wrong")
    run("asr_pt", "export", "--data-dir", store.data_dir, tmp_path / "export")

    output = tmp_path / "trained"
    train(
        "--base-model", model, "--corrections", tmp_path / "export", "--output", output, "--max-steps", 100,
        "--batch-size", 4, "--grad-accum", 1, "--lr", 1e-2, "--warmup-ratio", 0.05, "--eval-steps", 1000,
    )  # fmt: skip
    clips = f"clips={tmp_path / 'export'}?split=train"
    run("eval", "--model", f"before={model}", "--model", f"after={output}", "--dataset", clips,
        "--output", tmp_path / "eval", "--max-new-tokens", 24, "--resamples", 200)  # fmt: skip

    results = json.loads((tmp_path / "eval" / "results.json").read_text())["clips"]
    assert results["before"]["wer"] >= 90
    # The bar is 20%. The right masking reaches 0% here; a collator with the QwenLM#70 bug (prompt tokens in
    # the loss) was run through this very test once and reached 14.6% (one clip of eight confused), so the bar is
    # set at 10% to fail it: its loss is spread over prompt and audio placeholder tokens and learns the clips later.
    assert results["after"]["wer"] <= 10
    # The app serves int8 on CPU: quantised, the trained model must still write what it learned.
    run("eval", "--model", f"int8={output}", "--dataset", clips, "--output", tmp_path / "eval-int8",
        "--max-new-tokens", 24, "--resamples", 200, env={"ASR_PT_DTYPE": "int8"})  # fmt: skip
    assert json.loads((tmp_path / "eval-int8" / "results.json").read_text())["clips"]["int8"]["wer"] <= 10
    assert results["after"]["seen_in_training"] == ["trained_on"]  # eval knows these clips are not held out
    # The model is surer of the words it learned than of words in clips it never heard: overfit on eight clips it
    # writes confidently there too (one run: mean confidence 0.993 learned, 0.931 unseen), but it doubts them ten
    # times as much.
    learned, unseen = word_confidences_of(output, [audiofolder_corpus / name for name in sentences], tmp_path)
    assert 1 - unseen > 3 * (1 - learned) > 0, (learned, unseen)
    record = json.loads((output / TRAINING_RECORD).read_text())
    counts = record["counts"]["train"]["corrections"]
    assert (counts["read"], counts["kept"], counts["dropped"]) == (8, 8, {})
    spoken = sum(sf.info(audiofolder_corpus / name).duration for name in sentences)
    assert counts["hours"] == pytest.approx(spoken / 3600, abs=1e-4)  # the record keeps 4 decimals
    assert "| corrections | 8 | 8 |" in (output / "README.md").read_text()


def word_confidences_of(model_dir: Path, learned_clips: list[Path], folder: Path) -> tuple[float, float]:
    """The mean confidence of the words `model_dir` writes for clips it learned and for four it never heard."""
    from statistics import mean

    from asr_pt.audio import load_audio
    from asr_pt.espeak import speak
    from asr_pt.models import ASRModel
    from asr_pt.tiny_model import SENTENCES_PATH

    unseen_sentences = SENTENCES_PATH.read_text(encoding="utf-8").splitlines()[8:12]
    unseen_clips = [speak(sentence, folder / f"unseen{i}.wav") for i, sentence in enumerate(unseen_sentences)]
    model = ASRModel(str(model_dir), max_new_tokens=24)
    return tuple(
        mean(w.confidence for t in model.generate_batch([load_audio(str(p)) for p in clips]) for w in t.words)
        for clips in (learned_clips, unseen_clips)
    )


def csv_rows(path: Path) -> list[tuple[str, str]]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return [(row["file_name"], row["sentence"]) for row in csv.DictReader(f)]
