"""The Explorer on a large eval: opening a folder of 10,000 utterances by two models (goal under 2 s) and filtering
it (goal under 200 ms).

    python bench/explorer.py [--utterances 10000] [--repeats 5]

The folder is written here the way eval writes it (predictions.jsonl with Common Voice slice fields, results.json);
the figures are the library calls behind the tab (`asr_pt.explore.open_eval` with the summary, the slice menu and
the first table; `filter_table` down to the 500 rows the page receives), medians of repeats.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asr_pt.explore import ROWS_SHOWN, filter_table, open_eval  # noqa: E402
from bench.demo_overhead import median_seconds  # noqa: E402

WORDS = "o gato dorme no sofá e a casa está vazia hoje de manhã bom dia como estás obrigado até amanhã".split()


def write_eval(folder: Path, utterances: int) -> None:
    rng = random.Random(0)
    with open(folder / "predictions.jsonl", "w", encoding="utf-8") as f:
        for model in ("base", "fine-tuned"):
            for index in range(utterances):
                reference = " ".join(rng.choices(WORDS, k=rng.randint(4, 14)))
                row = {
                    "dataset": "cv17",
                    "source": "mozilla-foundation/common_voice_17_0?config=pt&split=test",
                    "model": model,
                    "model_id": model,
                    "id": f"common_voice_pt_{index:08d}.mp3",
                    "reference": reference,
                    "hypothesis": reference if rng.random() < 0.6 else " ".join(rng.choices(WORDS, k=6)),
                    "wer": round(rng.choice([0.0, 0.0, 12.5, 25.0, 50.0, 100.0]), 2),
                    "cer": 0.0,
                    "audio_seconds": round(rng.uniform(1.5, 10), 3),
                    "seconds": 0.05,
                    "truncated": False,
                    "language": "Portuguese",
                    "audio": f"/data/cv/clips/common_voice_pt_{index:08d}.mp3",
                    "fields": {
                        "gender": rng.choice(["male_masculine", "female_feminine", ""]) or "unknown",
                        "age": rng.choice(["twenties", "thirties", "fourties", "fifties"]),
                        "accents": rng.choice(["Português do Brasil", "Português de Portugal", "Angola"]),
                        "locale": "pt",
                    },
                }
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    (folder / "results.json").write_text(json.dumps({"cv17": {"base": {}, "fine-tuned": {}}}), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utterances", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        write_eval(folder, args.utterances)

        def open_as_the_tab_does():  # the folder read, its summary, the slice menu and the first table
            view = open_eval(folder)
            return view.summary(), view.slice_choices(), filter_table(view).head(ROWS_SHOWN)

        opening = median_seconds(open_as_the_tab_does, args.repeats)
        view = open_eval(folder)
        filters = {
            "fine-tune worse": {"worse_only": True},
            "WER above 30": {"wer_above": 30.0},
            "one slice value": {"slice_value": "accents = Angola"},
            "all three, by seconds": {
                "worse_only": True,
                "wer_above": 30.0,
                "slice_value": "accents = Angola",
                "sort_by": "seconds",
            },
        }
        print(f"open {args.utterances} utterances x 2 models: {1000 * opening:.0f} ms (median of {args.repeats})")
        for label, options in filters.items():
            seconds = median_seconds(
                lambda options=options: filter_table(view, **options).head(ROWS_SHOWN), args.repeats
            )
            shown = len(filter_table(view, **options))
            print(f"filter {label}: {1000 * seconds:.1f} ms ({shown} utterances)")


if __name__ == "__main__":
    main()
