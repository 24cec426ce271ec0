"""Live transcription's delay: how long each update takes against the seconds of audio heard so far.

    python bench/streaming.py                          # tiny model, CPU, up to the 30 s cap
    python bench/streaming.py --model DIR --device cuda

A chunk arrives every 2 s of speech; the update it triggers re-transcribes everything heard so far, so its delay
grows with the audio. A stream keeps up with real time while every update ends before the next chunk arrives (the
delay stays under the chunk length). Speech is espeak-ng Portuguese, fed as a browser sends it: 48 kHz int16 pieces
of half a second.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # runs as a script, like bench/foundation.py

import librosa  # noqa: E402
import numpy as np  # noqa: E402

from asr_pt.audio import load_audio  # noqa: E402
from asr_pt.espeak import speak  # noqa: E402
from asr_pt.models import ASRModel  # noqa: E402
from asr_pt.streaming import CHUNK_SECONDS, LiveStream, transcribe_step  # noqa: E402
from asr_pt.tiny_model import SENTENCES_PATH, build_tiny_model  # noqa: E402

RATE = 48000


def speech(folder: Path, seconds: float) -> np.ndarray:
    """At least `seconds` of Portuguese sentences, one after another, as 48 kHz int16."""
    clips, total = [], 0.0
    for index, sentence in enumerate(SENTENCES_PATH.read_text(encoding="utf-8").splitlines()):
        clips.append(load_audio(speak(sentence, folder / f"s{index}.wav")))
        total += len(clips[-1]) / 16000
        if total >= seconds:
            break
    samples = librosa.resample(np.concatenate(clips), orig_sr=16000, target_sr=RATE)
    return (samples * 32767).astype(np.int16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="hub id or folder (default: a tiny random checkpoint built here)")
    parser.add_argument("--seconds", type=float, default=30.0, help="the stream's cap")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--device")
    parser.add_argument("--dtype")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        model_id = args.model or str(build_tiny_model(temp / "tiny", seed=1))
        model = ASRModel(model_id, device=args.device, dtype=args.dtype, max_new_tokens=args.max_new_tokens)
        model.load()
        audio = speech(temp, args.seconds)
        step = functools.partial(transcribe_step, model)
        LiveStream(model, max_seconds=CHUNK_SECONDS).feed(RATE, audio[: RATE * 2], step)  # warm-up
        stream = LiveStream(model, max_seconds=args.seconds)
        delays = []
        for start in range(0, len(audio), RATE // 2):
            began = time.perf_counter()
            if stream.feed(RATE, audio[start : start + RATE // 2], step):
                delays.append((stream.steps[-1].heard_seconds, time.perf_counter() - began))
            if stream.finished:
                break
    print(
        f"model {model_id if args.model else 'tiny (random)'}, max_new_tokens {args.max_new_tokens}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("| audio heard (s) | delay to updated text (s) |\n| --: | --: |")
    for heard, delay in delays:
        print(f"| {heard:.1f} | {delay:.3f} |")
    behind = [heard for heard, delay in delays if delay >= CHUNK_SECONDS]
    print(f"every update before the next chunk (<{CHUNK_SECONDS:g} s) up to {args.seconds:g} s: {not behind}")
    if behind:
        print(f"falls behind real time from {behind[0]:.1f} s of audio")


if __name__ == "__main__":
    main()
