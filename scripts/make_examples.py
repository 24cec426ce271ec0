"""Writes the demo's example clips: short Portuguese sentences spoken by espeak-ng, in the audiofolder layout.

`python -m scripts.make_examples`, from the repository root, rewrites examples/*.wav and examples/metadata.csv
(file name, sentence); the app offers them as clickable examples with their sentence as the reference. Synthetic
speech, so no one's voice and no licence to track.
"""

import csv
from pathlib import Path

from asr_pt.espeak import speak

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
SENTENCES = [
    "Bom dia, como estás?",
    "O gato dorme no sofá.",
    "A reunião começa às nove horas.",
    "Vamos à praia no fim de semana?",
]


def main() -> None:
    EXAMPLES_DIR.mkdir(exist_ok=True)
    with open(EXAMPLES_DIR / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file_name", "sentence"])
        for i, sentence in enumerate(SENTENCES, start=1):
            path = speak(sentence, EXAMPLES_DIR / f"example{i}.wav")
            writer.writerow([path.name, sentence])
            print(f"{path} ({path.stat().st_size // 1024} KB): {sentence}")


if __name__ == "__main__":
    main()
