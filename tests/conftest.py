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
