"""bench/gpu.sh, the run made for a GPU, dry-run on CPU at the tiny size so that it cannot rot before a GPU comes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_gpu_bench_runs_end_to_end_on_cpu_at_tiny_size_and_writes_its_json(tmp_path):
    command = ["bash", str(REPO / "bench" / "gpu.sh"), str(tmp_path), "--size", "tiny", "--eval-batches", "1", "2"]
    command += ["--clips", "2", "--train-batch", "2", "--repeats", "1", "--tokens-per-second", "1"]
    environment = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert report["size"] == "tiny" and report["dtype"] == "float32"
    assert report["build"]["parameters"] > 0
    assert set(report["eval_rtfx"]) == {"1", "2"} and all(value > 0 for value in report["eval_rtfx"].values())
    assert report["app_5s_clip"]["median_seconds"] > 0
    step = report["training_step"]
    assert step["batch_size"] == 2 and step["step_seconds"] > 0 and step["halved_from"] == []
    assert step["card_round_hours"] == pytest.approx(step["step_seconds"] * 61_579 * 4 / 2 / 3600)
    assert "wrote" in done.stdout
