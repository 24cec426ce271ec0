"""Portuguese speech synthesised with espeak-ng and sox: clips for tests, benchmarks and the demo's examples.

Robotic, but real speech with a known transcript, made offline in milliseconds.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from asr_pt.audio import SAMPLE_RATE


def speak(text: str, out_path: str | Path, *, voice: str = "pt", words_per_minute: int = 160) -> Path:
    """Write `text` spoken by espeak-ng as a 16 kHz mono 16-bit WAV file."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (apt-get install -y espeak-ng sox)")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(suffix=".wav") as raw:
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", raw.name, text],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["sox", raw.name, "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(out)], check=True, capture_output=True
        )
    return out


def speak_corpus(sentences: Sequence[str], folder: str | Path) -> Path:
    """The sentences spoken into an audiofolder corpus: clip000.wav... and a metadata.csv of file_name, sentence."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file_name", "sentence"])
        for index, sentence in enumerate(sentences):
            speak(sentence, folder / f"clip{index:03d}.wav")
            writer.writerow([f"clip{index:03d}.wav", sentence])
    return folder
