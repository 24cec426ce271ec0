"""`python -m eval` and `eval.run`: the card's numbers, the interval, resuming, reuse, the held-out guard."""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jiwer
import kaldialign
import numpy as np
import pytest

from asr_pt.corpora import parse_spec
from asr_pt.text import align_compounds, normalize, written_form
from eval.cli import main
from eval.report import card_table, results_table
from eval.run import PREDICTIONS_FILE, Predictions, evaluate, seen_in_training
from eval.scores import EvaluationError, bootstrap_wers, compare, score_rows

REPO = Path(__file__).resolve().parent.parent
FAST = {"max_new_tokens": 6, "batch_size": 4, "resamples": 500, "verbose": False}


def read_lines(output: Path) -> list[dict]:
    with open(output / PREDICTIONS_FILE, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def make_audiofolder(folder: Path, rows: list[tuple[Path | bytes, str]]) -> Path:
    """An audiofolder of (clip or raw bytes, sentence) rows, each clip under a name of its own."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file_name", "sentence"])
        for index, (audio, sentence) in enumerate(rows):
            name = f"utt{index:03d}.wav"
            (folder / name).write_bytes(audio if isinstance(audio, bytes) else audio.read_bytes())
            writer.writerow([name, sentence])
    return folder


def test_results_equal_jiwer_by_hand_in_both_protocols(tmp_path, tiny_model_dir, speech_clips, common_voice_corpus):
    clips = [*speech_clips[:4], (speech_clips[4][0], ""), (b"not audio at all", "Isto não é áudio.")]
    folder = make_audiofolder(tmp_path / "af", clips)
    output = tmp_path / "out"
    results = evaluate(
        {"tiny": str(tiny_model_dir)}, [f"af={folder}", f"cv={common_voice_corpus}?split=test"], output, **FAST
    )

    lines = read_lines(output)
    assert {(line["dataset"], line["model"], line["model_id"]) for line in lines} == {
        ("af", "tiny", str(tiny_model_dir)),
        ("cv", "tiny", str(tiny_model_dir)),
    }
    for dataset, expected_n in (("af", 4), ("cv", 4)):
        rows = [line for line in lines if line["dataset"] == dataset]
        references, hypotheses = [r["reference"] for r in rows], [r["hypothesis"] for r in rows]
        written = [written_form(r) for r in references], [h.strip() for h in hypotheses]
        aligned = [align_compounds(normalize(r), normalize(h)) for r, h in zip(references, hypotheses, strict=True)]
        normalized = [r for r, _ in aligned], [h for _, h in aligned]
        scores = results[dataset]["tiny"]
        assert scores["n"] == len(rows) == expected_n
        assert scores["wer"] == round(100 * jiwer.wer(*written), 2)
        assert scores["cer"] == round(100 * jiwer.cer(*written), 2)
        merged = kaldialign.batch_error_rate(
            *([tuple(t.split()) for t in side] for side in normalized), merge_compounds=True
        )
        assert scores["wer_normalized"] == round(100 * merged["err_rate"], 2)
        assert scores["cer_normalized"] == round(100 * jiwer.cer(*normalized), 2)
        assert scores["audio_seconds"] == round(sum(r["audio_seconds"] for r in rows), 2)
        assert scores["rtfx"] == round(sum(r["audio_seconds"] for r in rows) / sum(r["seconds"] for r in rows), 2)
        for row in rows:
            assert row["cer"] == round(100 * jiwer.cer(written_form(row["reference"]), row["hypothesis"].strip()), 2)
            assert [word for word, _ in row["words"]] == row["hypothesis"].split()
            assert all(0 <= confidence <= 1 for _, confidence in row["words"])
    assert [r["reference"] for r in lines if r["dataset"] == "af"] == [s for _, s in speech_clips[:4]]  # as given
    assert json.loads((output / "results.json").read_text()) == results

    # The empty reference is dropped and the unreadable clip skipped, and both are counted and reported.
    assert (results["af"]["tiny"]["empty_references"], results["af"]["tiny"]["skipped_audio"]) == (1, 1)
    assert (results["cv"]["tiny"]["empty_references"], results["cv"]["tiny"]["skipped_audio"]) == (0, 0)
    report = (output / "report.md").read_text()
    assert "af: 1 utterances with an empty reference were dropped" in report
    assert "skipped `utt005.wav`" in report and "not readable audio" in report
    assert (output / "report.png").read_bytes().startswith(b"\x89PNG")
    confidence = json.loads((output / "slices.json").read_text())["confidence"]
    assert [(c["dataset"], c["model"]) for c in confidence] == [("af", "tiny"), ("cv", "tiny")]
    assert confidence[0]["words"] == sum(len(r["words"]) for r in lines if r["dataset"] == "af")
    assert "## Confidence" in report and "| af | tiny |" in report.split("## Confidence")[1]
    assert (output / "confidence.png").read_bytes().startswith(b"\x89PNG")


def hand_made_rows(dataset: str, model: str, pairs: list[tuple[str, str]]) -> list[dict]:
    return [
        {"dataset": dataset, "model": model, "id": f"u{i}", "reference": ref, "hypothesis": hyp}
        | {"audio_seconds": 2.0, "seconds": 0.5, "truncated": False}
        for i, (ref, hyp) in enumerate(pairs)
    ]


def test_card_table_and_interval_on_hand_made_predictions():
    # u0 right for both; u1 missing its final "." for the baseline only: 1 error in 8 words, 1 in 41 characters.
    # Resampling the two utterances gives Δ = -25 (u1 twice, 1/4), -12.5 (one of each, 1/2) or 0 (u0 twice, 1/4),
    # so the 95% interval runs from -25 to 0.
    references = ["um dois três quatro", "cinco seis sete oito"]
    baseline = hand_made_rows(
        "cv", "zero-shot", [(references[0], "Um dois três quatro."), (references[1], references[1].capitalize())]
    )
    candidate = hand_made_rows("cv", "fine-tuned", [(r, written_form(r)) for r in references])
    # Second dataset: the candidate loses one word of two on every utterance: Δ = +50 on every resampling.
    worse = [("sim senhor", "Sim senhor."), ("não senhor", "Não senhor."), ("bom dia", "Bom dia.")]
    baseline_2 = hand_made_rows("lab", "zero-shot", worse)
    candidate_2 = hand_made_rows("lab", "fine-tuned", [(ref, hyp.split()[0]) for ref, hyp in worse])

    better, worse_off = compare(baseline, candidate), compare(baseline_2, candidate_2)
    assert (better.baseline_wer, better.candidate_wer, better.delta, better.relative) == (12.5, 0.0, -12.5, -100.0)
    assert better.ci95 == (-25.0, 0.0) and not better.significant
    assert (better.baseline_cer, better.candidate_cer) == (round(100 / 41, 2), 0.0)
    assert worse_off.ci95 == (50.0, 50.0) and worse_off.significant and math.isnan(worse_off.relative)

    results = {
        "cv": {"zero-shot": score_rows(baseline), "fine-tuned": score_rows(candidate)},
        "lab": {"zero-shot": score_rows(baseline_2), "fine-tuned": score_rows(candidate_2)},
    }
    for models in results.values():
        for scores in models.values():
            scores["seen_in_training"] = []
    results["lab"]["fine-tuned"]["seen_in_training"] = ["selected_on"]
    assert results["cv"]["zero-shot"]["wer_ci95"] == [0.0, 25.0]
    assert results["cv"]["zero-shot"]["wer_normalized"] == 0.0  # the missing "." does not count there

    table = card_table([better, worse_off], results).splitlines()
    assert table[0] == (
        "| Dataset | Samples | zero-shot WER | fine-tuned WER | Δ WER | Relative Δ | 95% CI of Δ "
        "| CER zero-shot → fine-tuned | Held out |"
    )
    assert table[2] == "| cv | 2 | 12.50 | 0.00 | -12.50 | -100.0% | [-25.00, +0.00] | 2.44 → 0.00 | yes |"
    assert table[3] == (
        "| lab | 3 | 0.00 | 50.00 | +50.00 | n/a | [+50.00, +50.00] * | 0.00 → 70.00 "
        "| **no**: fine-tuned was selected on it |"
    )
    assert "| cv | zero-shot | 2 | 12.50 | 2.44 | 0.00 | 0.00 | [0.00, 25.00] | 0.1 | 4.0 | 0 |" in results_table(
        results
    )


def test_resume_after_a_killed_run(tmp_path, tiny_model_dir, speech_clips):
    """A run killed with SIGKILL mid-way keeps what it wrote; the next run transcribes only the rest."""
    folder = make_audiofolder(tmp_path / "af", speech_clips * 2)  # 16 clips
    output = tmp_path / "out"
    command = [sys.executable, "-m", "eval", "--model", f"tiny={tiny_model_dir}", "--dataset", f"af={folder}"]
    command += ["--output", str(output), "--batch-size", "1", "--max-new-tokens", "6", "--resamples", "100"]
    run = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    predictions = output / PREDICTIONS_FILE
    deadline = time.monotonic() + 120
    while not (predictions.exists() and predictions.read_text().count("\n") >= 3) and run.poll() is None:
        assert time.monotonic() < deadline, "the run wrote no predictions in two minutes"
        time.sleep(0.02)
    run.send_signal(signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    written = predictions.read_text(encoding="utf-8")
    assert 3 <= written.count("\n") < 16
    with open(predictions, "a", encoding="utf-8") as f:
        f.write('{"dataset": "af", "model": "ti')  # as if the kill had landed in the middle of a line

    results = evaluate({"tiny": str(tiny_model_dir)}, [f"af={folder}"], output, **FAST)

    after = predictions.read_text(encoding="utf-8")
    assert after.startswith(written)  # nothing written before the kill was recomputed or lost
    lines = read_lines(output)
    assert [line["id"] for line in lines] == [f"utt{i:03d}.wav" for i in range(16)]
    assert results["af"]["tiny"]["n"] == 16


def test_a_second_model_reuses_the_first_models_predictions(
    tmp_path, tiny_model_dir, other_tiny_model_dir, common_voice_corpus
):
    first = tmp_path / "first-model"
    shutil.copytree(tiny_model_dir, first)
    output, dataset = tmp_path / "out", f"cv={common_voice_corpus}?split=test"
    evaluate({"first": str(first)}, [dataset], output, **FAST)
    before = read_lines(output)
    shutil.rmtree(first)  # were the first model run again, loading it would now fail

    results = evaluate({"first": str(first), "second": str(other_tiny_model_dir)}, [dataset], output, **FAST)

    lines = read_lines(output)
    assert lines[: len(before)] == before and len(before) == 4
    assert [line["model"] for line in lines[len(before) :]] == ["second"] * 4
    assert set(results["cv"]) == {"first", "second"}
    assert "### first → second" in (output / "report.md").read_text()

    with pytest.raises(EvaluationError, match="holds predictions of model 'second'"):
        evaluate({"second": str(tiny_model_dir)}, [dataset], output, **FAST)


def test_a_dataset_name_keeps_meaning_the_same_data(tmp_path, tiny_model_dir, speech_clips, monkeypatch):
    """Rows are reused by dataset name: a changed reference is transcribed again, and a name pointing at other data
    is refused rather than scored with the other data's hypotheses."""
    folder = make_audiofolder(tmp_path / "af", speech_clips[:3])
    output, models = tmp_path / "out", {"tiny": str(tiny_model_dir)}
    evaluate(models, [f"af={folder}"], output, **FAST)
    before = read_lines(output)
    assert {line["source"] for line in before} == {f"{folder}?split=test"}

    monkeypatch.chdir(tmp_path)  # the same folder by a relative path is the same data: nothing to redo
    evaluate(models, ["af=af?split=test"], output, **FAST)
    assert read_lines(output) == before

    corrected = "Uma frase corrigida."
    make_audiofolder(folder, [speech_clips[0], (speech_clips[1][0], corrected), speech_clips[2]])
    results = evaluate(models, [f"af={folder}"], output, **FAST)
    lines = read_lines(output)
    assert lines[: len(before)] == before
    assert [(line["id"], line["reference"]) for line in lines[len(before) :]] == [("utt001.wav", corrected)]
    hypotheses = [line["hypothesis"] for line in (lines[0], lines[-1], lines[2])]
    written = [written_form(s) for s in (speech_clips[0][1], corrected, speech_clips[2][1])]
    assert results["af"]["tiny"]["wer"] == round(100 * jiwer.wer(written, [h.strip() for h in hypotheses]), 2)

    other = make_audiofolder(tmp_path / "elsewhere" / "af", speech_clips[3:6])
    with pytest.raises(
        EvaluationError, match=re.escape(f"holds predictions of dataset 'af' = {folder}?split=test, but")
    ):
        evaluate(models, [f"af={other}"], output, **FAST)
    assert read_lines(output) == lines


def test_hub_spec_goes_through_load_dataset(tmp_path, tiny_model_dir, parquet_corpus, speech_clips, capsys):
    """The Hub cannot be reached: a local repository of parquet files takes the same `load_dataset` path."""
    output = tmp_path / "out"
    argv = ["--model", f"tiny={tiny_model_dir}", "--dataset", f"hub={parquet_corpus}?split=test", "--limit", "3"]
    results = main([*argv, "--output", str(output), "--max-new-tokens", "6", "--resamples", "100"])
    assert results["hub"]["tiny"]["n"] == 3
    assert [line["reference"] for line in read_lines(output)] == [s for _, s in speech_clips[:3]]
    assert "| hub | tiny | 3 |" in capsys.readouterr().out  # the final table is printed


def test_datasets_a_checkpoint_was_selected_or_trained_on_are_not_held_out(
    tmp_path, tiny_model_dir, common_voice_corpus, monkeypatch
):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(tiny_model_dir, checkpoint)
    monkeypatch.chdir(common_voice_corpus.parent)  # the record names the corpus by a relative path
    record = {"base_model": str(tiny_model_dir), "trained_on": ["pt?split=train"], "selected_on": ["mine=pt"]}
    record |= {"holdout": [], "counts": {}}
    (checkpoint / "asr_pt_training.json").write_text(json.dumps(record))
    copy = shutil.copytree(common_voice_corpus, tmp_path / "copy")  # the same clips elsewhere: another dataset
    datasets = [f"test={common_voice_corpus}?split=test", f"train={common_voice_corpus}?split=train", f"other={copy}"]
    models = {"base": str(tiny_model_dir), "ft": str(checkpoint)}
    results = evaluate(models, datasets, tmp_path / "out", **FAST | {"max_new_tokens": 2})

    assert [results[name]["ft"]["seen_in_training"] for name in ("test", "train", "other")] == [
        ["selected_on"],
        ["trained_on"],
        [],
    ]
    assert all(results[name]["base"]["held_out"] for name in results)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "**test is not held out for ft**: the checkpoint was selected on it." in report
    assert "| **no**: ft was trained on it |" in report


def test_spec_matching_ignores_names_and_resolves_folders(tmp_path, monkeypatch):
    (tmp_path / "cv").mkdir()
    monkeypatch.chdir(tmp_path)
    record = {"selected_on": [f"{tmp_path}/cv/?split=test"], "trained_on": ["org/data?config=pt&split=train"]}
    assert seen_in_training(parse_spec("x=cv"), record) == ["selected_on"]  # split defaults to test
    assert seen_in_training(parse_spec("cv?split=dev"), record) == []
    assert seen_in_training(parse_spec("org/data?split=train"), record) == ["trained_on"]
    assert seen_in_training(parse_spec("org/data?split=train"), None) == []


def test_bootstrap_is_paired_and_reproducible():
    errors = np.array([[1, 0, 3, 2], [1, 0, 3, 2]])
    words = np.array([4, 5, 6, 7])
    resampled = bootstrap_wers(errors, words, resamples=300, seed=3)
    assert np.array_equal(resampled[:, 0], resampled[:, 1])  # the same resampling for both models
    assert np.array_equal(resampled, bootstrap_wers(errors, words, resamples=300, seed=3))
    assert resampled.shape == (300, 2) and resampled.min() >= 0 and resampled.max() <= 50


def test_a_broken_predictions_file_is_reported_not_overwritten(tmp_path):
    path = tmp_path / PREDICTIONS_FILE
    path.write_text('{"dataset": "a", "model": "m", "id": "1"}\nnot json\n{"dataset": "a", "model": "m", "id": "2"}\n')
    with pytest.raises(EvaluationError, match="line 2 is not a prediction"):
        Predictions(path)
    assert path.read_text().count("\n") == 3


def test_command_line_errors_are_messages(tmp_path, tiny_model_dir, common_voice_corpus, capsys):
    with pytest.raises(SystemExit):
        main(["--model", f"a={tiny_model_dir}", "--dataset", str(tmp_path / "nothing"), "--output", str(tmp_path)])
    assert "could not load dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--model", f"a={tmp_path}/gone", "--dataset", f"{common_voice_corpus}", "--output", str(tmp_path)])
    assert "Could not load model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--model", f"a={tiny_model_dir}", "--model", f"a={tmp_path}", "--dataset", "x"])
    assert "same name" in capsys.readouterr().err


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    shown = " ".join(capsys.readouterr().out.split())  # as argparse wraps it
    for default in ("(default: runs/eval)", "(default: 8)", "(default: Portuguese)", "(default: 128)"):
        assert default in shown
