"""Where the fine-tune wins and loses: slices of a Common Voice folder with their paired intervals, the error tables,
and the same output opened by the Explorer."""

from __future__ import annotations

import json
import shutil

import jiwer
import numpy as np
import pytest

from asr_pt.explore import open_eval
from asr_pt.text import written_form
from eval.errors import utterance_changes
from eval.run import evaluate
from eval.scores import EvaluationError

GENDERS = ["female", "male"]
ACCENTS = ["Brasil", "Portugal", "Brasil", "Angola"]


@pytest.fixture(scope="module")
def sliced_eval(tmp_path_factory, speech_clips, tiny_model_dir, other_tiny_model_dir):
    """Both tiny models on a Common Voice folder whose clips carry gender, accents and age."""
    folder = tmp_path_factory.mktemp("cv-sliced") / "pt"
    (folder / "clips").mkdir(parents=True)
    lines = ["client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tlocale\tsegment"]
    for i, (clip, sentence) in enumerate(speech_clips):
        shutil.copy(clip, folder / "clips" / clip.name)
        lines.append(f"c{i}\t{clip.name}\t{sentence}\t2\t0\t\t{GENDERS[i % 2]}\t{ACCENTS[i % 4]}\tpt\t")
    (folder / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path_factory.mktemp("eval-sliced")
    models = {"base": str(other_tiny_model_dir), "fine-tuned": str(tiny_model_dir)}
    evaluate(models, [f"cv={folder}"], output, max_new_tokens=6, resamples=200, verbose=False)
    return output


def test_slices_score_each_value_with_paired_deltas(sliced_eval, speech_clips):
    analysis = json.loads((sliced_eval / "slices.json").read_text(encoding="utf-8"))
    columns = {s["column"] for s in analysis["slices"]}
    assert columns == {"gender", "accents", "locale", "duration"}  # age is empty everywhere; duration always
    rows = [json.loads(line) for line in (sliced_eval / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows[0]["fields"] == {"gender": "female", "accents": "Brasil", "locale": "pt"}
    for score in (s for s in analysis["slices"] if s["column"] == "accents"):
        chosen = {i for i in range(len(speech_clips)) if ACCENTS[i % 4] == score["value"]}
        assert score["samples"] == len(chosen)
        for model in ("base", "fine-tuned"):
            subset = [r for r in rows if r["model"] == model and int(r["id"][4:6]) in chosen]
            refs, hyps = [written_form(r["reference"]) for r in subset], [r["hypothesis"].strip() for r in subset]
            assert score["wer"][model] == round(100 * jiwer.wer(refs, hyps), 2)
            low, high = score["wer_ci95"][model]
            assert low <= score["wer"][model] <= high
        assert score["delta"]["fine-tuned"] == pytest.approx(
            score["wer"]["fine-tuned"] - score["wer"]["base"], abs=0.02
        )
    report = (sliced_eval / "report.md").read_text(encoding="utf-8")
    assert "### cv · by accents" in report and "| Angola | 2 |" in report and "Δ fine-tuned [95% CI]" in report
    assert "## Errors" in report and "utterance by utterance" in report
    assert (sliced_eval / "slices.png").read_bytes().startswith(b"\x89PNG")


def test_error_tables_add_up(sliced_eval):
    analysis = json.loads((sliced_eval / "slices.json").read_text(encoding="utf-8"))
    results = json.loads((sliced_eval / "results.json").read_text(encoding="utf-8"))
    for kinds in analysis["errors"]:
        errors = kinds["substitutions"] + kinds["insertions"] + kinds["deletions"]
        assert round(100 * errors / kinds["reference_words"], 2) == results["cv"][kinds["model"]]["wer"]
    (changes,) = analysis["utterances"]
    assert changes["better"] + changes["worse"] + changes["same"] == 8


def test_utterance_changes_by_hand():
    rows = [
        {"dataset": "d", "model": m, "id": f"u{i}", "reference": "a b", "hypothesis": "a"}
        for m in "bc"
        for i in range(3)
    ]
    changes = utterance_changes(rows[:3], rows[3:], (np.array([2, 1, 0]), np.array([0, 1, 1])))
    assert (changes.better, changes.worse, changes.same) == (1, 1, 1)
    assert [e["id"] for e in changes.examples["better"]] == ["u0"] and changes.examples["worse"][0]["id"] == "u2"


def test_explorer_opens_what_eval_wrote(sliced_eval):
    view = open_eval(sliced_eval)
    assert (view.baseline, view.candidate, len(view.table)) == ("base", "fine-tuned", 8)
    assert view.slice_columns == ["gender", "accents", "locale", "duration"]
    assert not view.problems


def test_an_unknown_slice_column_is_a_clear_error(sliced_eval, tmp_path, tiny_model_dir, common_voice_corpus):
    with pytest.raises(EvaluationError, match="--slice-by dialect: no utterance has that column; the data has"):
        evaluate(
            {"tiny": str(tiny_model_dir)},
            [f"cv={common_voice_corpus}"],
            tmp_path,
            max_new_tokens=4,
            resamples=50,
            verbose=False,
            slice_by=["dialect"],
        )
