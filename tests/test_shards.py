"""`torchrun -m eval` and `torchrun -m asr_pt import` over two CPU processes: the very files one process writes."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_eval import make_audiofolder

from asr_pt.models import ASRModel
from asr_pt.review.importer import import_dataset
from asr_pt.review.store import ReviewStore
from eval.run import PREDICTIONS_FILE, evaluate

REPO = Path(__file__).resolve().parent.parent
SETTINGS = ["--batch-size", "2", "--max-new-tokens", "4"]
IMPORTED = 5
RESUMED_SECONDS = 123.0  # a time no run measures: marks the rows a rerun took from a killed run's shard file


def torchrun(*arguments: str) -> subprocess.Popen:
    """Two gloo processes on this machine, as a user would start them."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *arguments]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        command, cwd=REPO, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finished(run: subprocess.Popen) -> str:
    """What a launch printed, once it has succeeded."""
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, out[-3000:] + err[-3000:]
    return out


@pytest.fixture(scope="module")
def import_by_two(tmp_path_factory, tiny_model_dir, other_tiny_model_dir, audiofolder_corpus):
    """`torchrun -m asr_pt import` started as soon as the module's first test needs it: its processes' start-up (some
    10 s of imports each) then overlaps the eval launch's. Returns the launch and its store's folder."""
    data = tmp_path_factory.mktemp("import-by-two")
    run = torchrun(
        "-m", "asr_pt", "import", "--data-dir", str(data), "--dataset", f"af={audiofolder_corpus}",
        "--limit", str(IMPORTED), "--finetuned-model", str(tiny_model_dir), "--base-model", str(other_tiny_model_dir),
        *SETTINGS,
    )  # fmt: skip
    yield run, data
    if run.poll() is None:
        run.kill()
        run.communicate()


def without_times(line: str) -> dict:
    row = json.loads(line)
    del row["seconds"]
    return row


@pytest.mark.usefixtures("import_by_two")  # started first, so that both launches start up at once
def test_two_processes_write_what_one_writes_and_resume_a_killed_shard(
    tmp_path, tiny_model_dir, other_tiny_model_dir, speech_clips
):
    clips = [*speech_clips[:5], (b"not audio", "uma frase"), *speech_clips[5:7]]  # the unreadable one is rank 1's
    folder = make_audiofolder(tmp_path / "af", clips)
    models = {"a": str(tiny_model_dir), "b": str(other_tiny_model_dir)}
    one = tmp_path / "one"
    evaluate(models, [f"af={folder}"], one, batch_size=2, max_new_tokens=4, resamples=200, verbose=False)
    one_rows = (one / PREDICTIONS_FILE).read_text(encoding="utf-8").splitlines()

    # A two-process run killed after rank 1 wrote model a's first two clips (1 and 3), mid-way through a third line.
    two = tmp_path / "two"
    two.mkdir()
    resumed = [without_times(line) | {"seconds": RESUMED_SECONDS} for line in one_rows if '"model": "a"' in line][1:4:2]
    shard = two / "predictions.rank1-of-2.jsonl"
    shard.write_text("".join(json.dumps(row) + "\n" for row in resumed) + '{"dataset": "af", "mod', encoding="utf-8")

    arguments = [f"--model=a={tiny_model_dir}", f"--model=b={other_tiny_model_dir}", f"--dataset=af={folder}"]
    printed = finished(torchrun("-m", "eval", *arguments, "--output", str(two), "--resamples", "200", *SETTINGS))

    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())  # no shard file left
    two_rows = (two / PREDICTIONS_FILE).read_text(encoding="utf-8").splitlines()
    assert sorted(map(without_times, two_rows), key=str) == sorted(map(without_times, one_rows), key=str)
    assert len(two_rows) == 14  # 7 readable clips, 2 models, each once
    kept = [json.loads(line) for line in two_rows if json.loads(line)["seconds"] == RESUMED_SECONDS]
    assert [row["id"] for row in kept] == [row["id"] for row in resumed] == ["utt001.wav", "utt003.wav"]
    assert printed.count("### All scores") == 1  # only the main process reports
    results = {path: json.loads((path / "results.json").read_text()) for path in (one, two)}
    for scores in (*results[one]["af"].values(), *results[two]["af"].values()):
        del scores["rtfx"]  # speed is the one thing two runs measure apart
    assert results[one] == results[two] and results[two]["af"]["a"]["skipped_audio"] == 1
    assert (two / "slices.json").read_bytes() == (one / "slices.json").read_bytes()

    # One process given the merged predictions computes nothing and writes the very same report, file for file.
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(two / PREDICTIONS_FILE, again / PREDICTIONS_FILE)
    evaluate(models, [f"af={folder}"], again, batch_size=2, max_new_tokens=4, resamples=200, verbose=False)
    for name in ("predictions.jsonl", "results.json", "slices.json", "report.md"):
        assert (again / name).read_bytes() == (two / name).read_bytes(), name


def test_two_processes_import_what_one_imports(
    tmp_path, import_by_two, tiny_model_dir, other_tiny_model_dir, audiofolder_corpus, speech_clips
):
    one = ReviewStore(tmp_path / "one")
    finetuned, base = (
        ASRModel(str(m), max_new_tokens=4, max_batch_size=2) for m in (tiny_model_dir, other_tiny_model_dir)
    )
    import_dataset(one, f"af={audiofolder_corpus}", finetuned, base, limit=IMPORTED, batch_size=2, progress=False)

    run, data = import_by_two
    printed = finished(run)

    two = ReviewStore(data)
    assert printed.count(f"queued {IMPORTED} clips, 0 were queued already") == 1
    ids = range(1, IMPORTED + 1)
    items = {store: [dataclasses.replace(store.get(i), created_at=0) for i in ids] for store in (one, two)}
    assert items[two] == items[one]  # the same ids, in the corpus's order, with the same transcripts
    assert [item.source_id for item in items[two]] == [path.name for path, _ in speech_clips[:IMPORTED]]
    assert sorted(os.listdir(two.audio_dir)) == sorted(os.listdir(one.audio_dir))
    assert not list(data.glob("import*.jsonl"))  # the shard files were merged and removed
