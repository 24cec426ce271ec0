"""Shared fixtures: tiny Qwen3-ASR checkpoints and espeak-ng Portuguese clips, built once per test session."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from asr_pt.espeak import speak  # noqa: E402
from asr_pt.settings import DEFAULTS  # noqa: E402
from asr_pt.tiny_aligner import build_tiny_aligner  # noqa: E402
from asr_pt.tiny_model import LEARNABLE, SENTENCES_PATH, build_tiny_model  # noqa: E402

SENTENCES = SENTENCES_PATH.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-seed1"), seed=1)


@pytest.fixture(scope="session")
def other_tiny_model_dir(tmp_path_factory) -> Path:
    """A second tiny model whose weights differ, so that two models disagree."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-seed2"), seed=2)


@pytest.fixture(scope="session")
def tiny_aligner_dir(tmp_path_factory) -> Path:
    return build_tiny_aligner(tmp_path_factory.mktemp("tiny-aligner"), seed=1)


@pytest.fixture(scope="session")
def speech_clips(tmp_path_factory) -> list[tuple[Path, str]]:
    """Eight Portuguese sentences spoken by espeak-ng: (16 kHz WAV path, sentence)."""
    folder = tmp_path_factory.mktemp("speech")
    return [(speak(sentence, folder / f"clip{i:02d}.wav"), sentence) for i, sentence in enumerate(SENTENCES[:8])]


@pytest.fixture(scope="session")
def audiofolder_corpus(tmp_path_factory, speech_clips) -> Path:
    """The clips in the Hugging Face audiofolder layout, with a metadata.csv."""
    import csv
    import shutil

    folder = tmp_path_factory.mktemp("audiofolder")
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file_name", "sentence"])
        for path, sentence in speech_clips:
            shutil.copy(path, folder / path.name)
            writer.writerow([path.name, sentence])
    return folder


@pytest.fixture(scope="session")
def common_voice_corpus(tmp_path_factory, speech_clips) -> Path:
    """The clips as a Common Voice release folder: MP3s in clips/, test.tsv and train.tsv (half each)."""
    import subprocess

    folder = tmp_path_factory.mktemp("cv-corpus") / "pt"
    (folder / "clips").mkdir(parents=True)
    header = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tlocale\tsegment\n"
    tables = {"test": header, "train": header}
    for i, (path, sentence) in enumerate(speech_clips):
        name = f"common_voice_pt_{1000 + i}.mp3"
        subprocess.run(["sox", str(path), "-C", "64", str(folder / "clips" / name)], check=True)
        tables["test" if i % 2 == 0 else "train"] += f"c{i}\t{name}\t{sentence}\t2\t0\t\t\t\tpt\t\n"
    for split, table in tables.items():
        (folder / f"{split}.tsv").write_text(table, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def parquet_corpus(tmp_path_factory, speech_clips) -> Path:
    """The clips as a dataset repository of parquet files, the way the Hub serves them (data/test-*.parquet)."""
    from datasets import Audio, Dataset, Features, Value

    folder = tmp_path_factory.mktemp("hub-dataset")
    (folder / "data").mkdir()
    features = Features({"audio": {"bytes": Value("binary"), "path": Value("string")}, "sentence": Value("string")})
    rows = {
        "audio": [{"bytes": path.read_bytes(), "path": path.name} for path, _ in speech_clips],
        "sentence": [sentence for _, sentence in speech_clips],
    }
    dataset = Dataset.from_dict(rows, features=features).cast_column("audio", Audio(sampling_rate=16000, decode=False))
    dataset.to_parquet(str(folder / "data" / "test-00000-of-00001.parquet"))
    dataset.save_to_disk(str(folder / "saved"))
    return folder


# --- The demo (app.py), served in this process on a free port with two tiny models -----------------------------------

DEMO_MAX_NEW_TOKENS = 8
DEMO_MAX_SECONDS = 10.0
DEMO_SETTINGS = replace(DEFAULTS, demo_max_seconds=DEMO_MAX_SECONDS, max_new_tokens=DEMO_MAX_NEW_TOKENS)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def serve_demo():
    """Starts the page as `python app.py` does (models loading in the background) and returns its URL."""
    from asr_pt.alignment import Aligner
    from asr_pt.models import ASRModel
    from asr_pt.ui import Models, build_demo, launch

    demos = []

    def serve(finetuned: str, base: str, aligner: str | None = None) -> str:
        models = Models(*(ASRModel(m, max_new_tokens=DEMO_MAX_NEW_TOKENS) for m in (finetuned, base)))
        models.load_in_background()
        demo = build_demo(models, DEMO_SETTINGS, aligner=Aligner(aligner) if aligner else None)
        port = free_port()
        launch(demo, DEMO_SETTINGS, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
        demos.append(demo)
        return f"http://127.0.0.1:{port}/"

    yield serve
    for demo in demos:
        demo.close()


@pytest.fixture(scope="session")
def demo_url(serve_demo, tiny_model_dir, other_tiny_model_dir, tiny_aligner_dir) -> str:
    return serve_demo(str(tiny_model_dir), str(other_tiny_model_dir), str(tiny_aligner_dir))


# --- The Space on ZeroGPU: `python app.py` under tests/zerogpu's stand-in for `spaces` ------------------------------

ZEROGPU_STANDIN = Path(__file__).resolve().parent / "zerogpu"
REPO = Path(__file__).resolve().parent.parent
ZEROGPU_REVIEWER = ("ana", "segredo")  # the served app's one reviewer login


@dataclass(frozen=True)
class ServedApp:
    """`python app.py` in a subprocess: its URL, its log, and the GPU calls it made (one JSON line each)."""

    url: str
    log: Path
    calls_file: Path

    def gpu_calls(self) -> list[dict]:
        """Every finished `spaces.GPU` call so far, in order: function, duration, worker, new_worker, outcome, items."""
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text(encoding="utf-8").splitlines()]


def serve_app(env: dict[str, str], folder: Path, timeout: float = 240) -> Iterator[ServedApp]:
    """Starts `python app.py` with `env` added to this environment, waits until its page answers, and stops it (and
    every process it forked) afterwards."""
    port = free_port()
    app = ServedApp(f"http://127.0.0.1:{port}/", folder / "app.log", folder / "gpu-calls.jsonl")
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "ZEROGPU_STANDIN_CALLS": str(app.calls_file),
        **env,
    }
    with open(app.log, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=log, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"app.py exited with {server.returncode}:\n{app.log.read_text()[-3000:]}")
            try:
                if httpx.get(app.url, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"app.py did not answer in {timeout} s:\n{app.log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield app
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)  # the app and its GPU workers
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.fixture(scope="module")
def zerogpu_app(tmp_path_factory, tiny_model_dir, other_tiny_model_dir, tiny_aligner_dir) -> Iterator[ServedApp]:
    """The Space as ZeroGPU runs it, one per test module: `SPACES_ZERO_GPU=1`, tests/zerogpu first on the import
    path (every `spaces.GPU` call forks a worker, pickles its way across and is counted; a model that runs in the
    main process raises), two tiny models, the tiny aligner, a review store and one reviewer (`ZEROGPU_REVIEWER`)."""
    from asr_pt.review.reviewers import hash_password

    folder = tmp_path_factory.mktemp("zerogpu-app")
    name, password = ZEROGPU_REVIEWER
    env = {
        "SPACES_ZERO_GPU": "1",
        "PYTHONPATH": os.pathsep.join([str(ZEROGPU_STANDIN), str(REPO), os.environ.get("PYTHONPATH", "")]),
        "ASR_PT_FINETUNED_MODEL": str(tiny_model_dir),
        "ASR_PT_BASE_MODEL": str(other_tiny_model_dir),
        "ASR_PT_ALIGNER_MODEL": str(tiny_aligner_dir),
        "ASR_PT_DTYPE": "float32",  # ZeroGPU serves bfloat16 on its GPU, never int8 (which quantises on the CPU)
        "ASR_PT_MAX_NEW_TOKENS": str(DEMO_MAX_NEW_TOKENS),
        "ASR_PT_DEMO_MAX_SECONDS": str(DEMO_MAX_SECONDS),
        "ASR_PT_DATA_DIR": str(folder / "data"),
        "ASR_PT_REVIEWERS": f"{name}:{hash_password(password)}",
    }
    yield from serve_app(env, folder)


# ---------------------------------------------------------------------------------------------------------------------
# train: the review store's export layout (the agreed contract), and a tiny model wide enough to learn a few clips


def write_export(folder: Path, clips: list[tuple[Path, str]], source_splits: list[str] | None = None) -> Path:
    """A folder shaped like `python -m asr_pt export` writes it: data/train-00000-of-00001.parquet, every column."""
    from datasets import Audio, Dataset, Features, Value

    from asr_pt.audio import content_hash, duration, load_audio

    splits = source_splits or [""] * len(clips)
    samples = [load_audio(path) for path, _ in clips]
    string_columns = ["id", "text", "reference", "hypothesis_finetuned", "hypothesis_base", "model_finetuned"]
    string_columns += ["model_base", "verdict", "reviewer", "source", "source_id", "source_split", "audio_hash"]
    features = Features(
        {"audio": {"bytes": Value("binary"), "path": Value("string")}}
        | {column: Value("string") for column in string_columns}
        | {"is_test": Value("bool"), "duration": Value("float64")}
    )
    rows = {
        "audio": [{"bytes": path.read_bytes(), "path": path.name} for path, _ in clips],
        "id": [f"item-{i}" for i in range(len(clips))],
        "text": [sentence for _, sentence in clips],
        "reference": [sentence for _, sentence in clips],
        "hypothesis_finetuned": ["?"] * len(clips),
        "hypothesis_base": ["?"] * len(clips),
        "model_finetuned": ["tiny-a"] * len(clips),
        "model_base": ["tiny-b"] * len(clips),
        "verdict": ["both wrong"] * len(clips),
        "reviewer": ["ana"] * len(clips),
        "source": ["espeak"] * len(clips),
        "source_id": [path.name for path, _ in clips],
        "source_split": splits,
        "audio_hash": [content_hash(s) for s in samples],
        "is_test": [split.startswith("test") for split in splits],
        "duration": [duration(s) for s in samples],
    }
    dataset = Dataset.from_dict(rows, features=features).cast_column("audio", Audio(sampling_rate=16000, decode=False))
    (folder / "data").mkdir(parents=True, exist_ok=True)
    dataset.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    return folder


@pytest.fixture(scope="session")
def learnable_tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny model that can learn eight clips on CPU in a minute or two (see `build_tiny_model`)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-learnable"), seed=1, **LEARNABLE)
