"""Shared fixtures: tiny Qwen3-ASR checkpoints and espeak-ng Portuguese clips, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from asr_pt.espeak import speak  # noqa: E402
from asr_pt.tiny_model import SENTENCES_PATH, build_tiny_model  # noqa: E402

SENTENCES = SENTENCES_PATH.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-seed1"), seed=1)


@pytest.fixture(scope="session")
def other_tiny_model_dir(tmp_path_factory) -> Path:
    """A second tiny model whose weights differ, so that two models disagree."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-seed2"), seed=2)


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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def serve_demo():
    """Starts the page as `python app.py` does (models loading in the background) and returns its URL."""
    import app
    from asr_pt.models import ASRModel

    demos = []

    def serve(finetuned: str, base: str) -> str:
        models = app.Models(*(ASRModel(m, max_new_tokens=DEMO_MAX_NEW_TOKENS) for m in (finetuned, base)))
        models.load_in_background()
        demo = app.build_demo(models, max_seconds=DEMO_MAX_SECONDS)
        port = free_port()
        app.launch(
            demo, max_seconds=DEMO_MAX_SECONDS, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True
        )
        demos.append(demo)
        return f"http://127.0.0.1:{port}/"

    yield serve
    for demo in demos:
        demo.close()


@pytest.fixture(scope="session")
def demo_url(serve_demo, tiny_model_dir, other_tiny_model_dir) -> str:
    return serve_demo(str(tiny_model_dir), str(other_tiny_model_dir))
