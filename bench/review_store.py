"""Review store figures at scale: 100,000 queued items, claim-next and save latency, export time.

python bench/review_store.py [--items 100000] [--operations 500] [--export-items 10000]

Items reuse a few spoken clips (the audio folder holds one file per distinct clip) and a few hypothesis pairs, so
the queue has a real spread of disagreement. Latencies are for one reviewer claiming and saving in turn, with the
store's durable settings (WAL, synchronous=FULL).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asr_pt.audio import load_audio  # noqa: E402
from asr_pt.espeak import speak  # noqa: E402
from asr_pt.review.export import export_dataset  # noqa: E402
from asr_pt.review.items import NewItem  # noqa: E402
from asr_pt.review.store import ReviewStore  # noqa: E402
from asr_pt.tiny_model import SENTENCES_PATH  # noqa: E402


def percentiles(seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    return f"median {statistics.median(ms):.2f} ms, p95 {ms[int(0.95 * (len(ms) - 1))]:.2f} ms, max {ms[-1]:.2f} ms"


def fill(store: ReviewStore, count: int, folder: Path) -> None:
    sentences = SENTENCES_PATH.read_text(encoding="utf-8").splitlines()[:4]
    clips = [store.put_audio(load_audio(speak(s, folder / f"{i}.wav"))) for i, s in enumerate(sentences)]
    pairs = [(s, s.lower().replace("a", "o", n)) for n, s in enumerate(sentences)]
    items = (
        NewItem(
            audio_hash=clips[n % len(clips)][0],
            duration=clips[n % len(clips)][1],
            source="bench",
            source_id=f"clip{n}",
            source_split="test" if n % 10 == 0 else "train",
            reference=pairs[n % 4][0],
            hypothesis_finetuned=pairs[n % 4][0],
            hypothesis_base=pairs[(n // 4) % 4][1],
            model_finetuned="ft",
            model_base="base",
        )
        for n in range(count)
    )
    store.add_items(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--operations", type=int, default=500, help="claim+save rounds timed")
    parser.add_argument("--export-items", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = ReviewStore(tmp / "data")
        start = time.perf_counter()
        fill(store, args.items, tmp)
        print(f"queued {args.items} items in {time.perf_counter() - start:.1f} s (one transaction)")
        print(f"database {store.db_path.stat().st_size / 1e6:.1f} MB, {len(list(store.audio_dir.glob('*.wav')))} wavs")

        claims, saves = [], []
        for n in range(args.operations):
            start = time.perf_counter()
            item = store.claim_next(f"reviewer{n % 3}")
            claims.append(time.perf_counter() - start)
            start = time.perf_counter()
            store.save(item.id, f"reviewer{n % 3}", item.hypothesis_finetuned, item.version, verdict="equal")
            saves.append(time.perf_counter() - start)
        print(f"claim-next ({args.operations}): {percentiles(claims)}")
        print(f"save       ({args.operations}): {percentiles(saves)}")

        # Correct enough items for the export in one go (the timed saves above count towards it).
        with store._write() as db:
            db.execute(
                "UPDATE items SET status = 'corrected', text = hypothesis_finetuned, reviewer = 'bulk', version = 1"
                " WHERE id IN (SELECT id FROM items WHERE status != 'corrected' LIMIT ?)",
                (args.export_items - len(store.corrected()),),
            )
        start = time.perf_counter()
        summary = export_dataset(store, tmp / "export")
        elapsed = time.perf_counter() - start
        size = (tmp / "export" / "data" / "train-00000-of-00001.parquet").stat().st_size / 1e6
        print(f"export of {summary.items} items: {elapsed:.1f} s ({size:.0f} MB parquet, {summary.hours:.1f} h audio)")


if __name__ == "__main__":
    main()
