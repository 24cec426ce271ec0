"""The product at real size on this machine: a 1.7B-shaped random checkpoint through the app's, eval's and train's code.

    python -m asr_pt random-model /work/models-1.7b/a --size 1.7b --seed 1     # once (about 50 s, 4.1 GB)
    python -m asr_pt random-model /work/models-1.7b/b --size 1.7b --seed 2
    python bench/real_size.py /work/models-1.7b/a /work/models-1.7b/b                  # every part
    python bench/real_size.py /work/models-1.7b/a /work/models-1.7b/b --parts model:int8 app:int8

Each part runs in its own process, so its peak resident memory (RSS) is its own. Next to wall seconds it records the
CPU seconds spent (all threads): on a machine shared with other work, CPU seconds / 2 approximates an idle 2-core
wall time, where wall time alone measures the other work too. Random weights never emit an end
token, so every transcript is exactly `--tokens-per-second` x clip length new tokens (4/s, a realistic transcript);
a real model stops earlier on silence and later on fast speech. Parts:

- build: `python -m asr_pt random-model` (time, peak RSS, size on disk);
- model:DTYPE: one `ASRModel` (load time, RSS, peak RSS), then a 5 s and a 20 s clip (seconds, RTF; the 5 s twice);
- app:DTYPE: `python app.py` with both models in DTYPE: start-to-ready, peak RSS, then a 5 s clip through both over
  the `/transcribe` API (twice);
- eval:DTYPE: `eval.run.evaluate` RTFx at batch 1, 4 and 16 over 16 clips (a sentence each, about 4 s);
- train: one training step (forward, backward) at batch 2 in bfloat16, gradient checkpointing off and on;
- agreement:DTYPE: the first tokens DTYPE writes against float32's, at the 1.7B shape (random weights);
- tiny-agreement:DTYPE: DTYPE against float32 on a tiny model trained on eight clips (WER of each, and between);
- paired: a 5 s clip in int8, bfloat16 and float32 back to back, after a warm-up clip each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from asr_pt.audio import SAMPLE_RATE, load_audio  # noqa: E402
from asr_pt.espeak import speak, speak_corpus  # noqa: E402
from asr_pt.tiny_model import SENTENCES_PATH  # noqa: E402

GIB = 2**30
PARTS = ("build", "model:float32", "model:bfloat16", "model:int8", "app:int8", "eval:int8", "train")
PARTS += ("agreement:int8", "tiny-agreement:int8", "paired")


def peak_rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def rss() -> float:
    import psutil

    return psutil.Process().memory_info().rss / GIB


def speech(seconds: float, first_sentence: int = 0) -> np.ndarray:
    """`seconds` of espeak-ng Portuguese: shipped sentences one after another, cut to length."""
    sentences = SENTENCES_PATH.read_text(encoding="utf-8").splitlines()
    pieces, total, index = [], 0, first_sentence
    with tempfile.TemporaryDirectory() as folder:
        while total < seconds * SAMPLE_RATE:
            samples = load_audio(speak(sentences[index % len(sentences)], Path(folder) / f"{index}.wav"))
            pieces.append(samples)
            total += len(samples)
            index += 1
    return np.concatenate(pieces)[: int(seconds * SAMPLE_RATE)]


def write_clip(seconds: float, path: Path) -> Path:
    import soundfile as sf

    sf.write(path, speech(seconds), SAMPLE_RATE)
    return path


def part_build(args) -> dict:
    with tempfile.TemporaryDirectory(dir=args.scratch) as folder:
        start = time.perf_counter()
        command = [sys.executable, "-m", "asr_pt", "random-model", folder, "--size", "1.7b"]
        subprocess.run(command, check=True, capture_output=True)
        seconds = time.perf_counter() - start
        size = sum(f.stat().st_size for f in Path(folder).iterdir())
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / GIB
    return {"seconds": seconds, "gb_on_disk": size / 1e9, "peak_rss_gib": peak}


def part_model(args, dtype: str) -> dict:
    from asr_pt.models import ASRModel

    clips = {seconds: speech(seconds) for seconds in (5, 20)}
    before = rss()
    model = ASRModel(args.model, dtype=dtype, max_new_tokens=1)
    start, cpu = time.perf_counter(), time.process_time()
    model.load()
    result = {"load_seconds": time.perf_counter() - start, "load_cpu_seconds": time.process_time() - cpu}
    result |= {"rss_gib": rss(), "load_peak_rss_gib": peak_rss()}
    result |= {"rss_before_gib": before, "weights_gib": model.weight_bytes / GIB}
    runs = [5, 5, 20] if dtype in args.long_clip_dtypes else [5]
    for seconds in runs:
        model._model.max_new_tokens = model.max_new_tokens = round(args.tokens_per_second * seconds)
        cpu = time.process_time()
        transcript = model.transcribe(clips[seconds])
        result.setdefault(f"clip_{seconds}s_seconds", []).append(transcript.seconds)
        result.setdefault(f"clip_{seconds}s_cpu_seconds", []).append(time.process_time() - cpu)
        result.setdefault("all_truncated", []).append(transcript.truncated)
    result["peak_rss_gib"] = peak_rss()
    return result


def part_app(args, dtype: str) -> dict:
    import psutil
    from gradio_client import Client, handle_file

    port = 7990
    clip = write_clip(5, Path(args.scratch) / "clip5.wav")
    env = os.environ | {
        "ASR_PT_FINETUNED_MODEL": args.model, "ASR_PT_BASE_MODEL": args.other, "ASR_PT_DTYPE": dtype,
        "ASR_PT_MAX_NEW_TOKENS": str(round(args.tokens_per_second * 5)), "GRADIO_SERVER_PORT": str(port),
        "ASR_PT_DATA_DIR": str(Path(args.scratch) / "data"),
    }  # fmt: skip
    start = time.perf_counter()
    app = subprocess.Popen([sys.executable, str(REPO / "app.py")], env=env, stderr=subprocess.PIPE, text=True)
    try:
        result, ready, warm = {}, 0, 0
        for line in app.stderr:
            ready += "model ready" in line
            warm += "warmed up" in line
            if "unavailable" in line:
                raise RuntimeError(line)
            if ready == 2 and "start_to_ready_seconds" not in result:
                result["start_to_ready_seconds"] = time.perf_counter() - start
                result["ready_peak_rss_gib"] = _process_peak(app.pid)
            if warm == 2:
                break
        result["start_to_warm_seconds"] = time.perf_counter() - start
        threading.Thread(target=app.stderr.read, daemon=True).start()  # a full pipe would block the app
        client = Client(wait_for_page(f"http://127.0.0.1:{port}/"), verbose=False)  # with `spaces`, it loads first
        for _ in range(2):
            start, cpu = time.perf_counter(), sum(psutil.Process(app.pid).cpu_times()[:2])
            answer = client.predict(handle_file(str(clip)), "Portuguese", "", "", api_name="/transcribe")
            result.setdefault("clip_5s_both_seconds", []).append(time.perf_counter() - start)
            result.setdefault("clip_5s_both_cpu_seconds", []).append(sum(psutil.Process(app.pid).cpu_times()[:2]) - cpu)
            per_model = [run["transcript"]["seconds"] for run in answer["runs"].values()]
            result.setdefault("per_model_seconds", []).append(per_model)
        result["status"] = client.predict(api_name="/status")
        result["peak_rss_gib"] = _process_peak(app.pid)
    finally:
        app.terminate()
        app.wait()
    return result


def wait_for_page(url: str, timeout: float = 300) -> str:
    """The page's URL once it answers: with the `spaces` package installed, app.py loads the models before serving."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=5)
            return url
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _process_peak(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / GIB
    raise RuntimeError("no VmHWM")


def part_eval(args, dtype: str) -> dict:
    from eval.run import evaluate

    sentences = SENTENCES_PATH.read_text(encoding="utf-8").splitlines()[: args.eval_clips]  # about 4 s each
    corpus = speak_corpus(sentences, Path(args.scratch) / "eval-clips")
    result = {}
    for batch_size in args.batch_sizes:
        scores = evaluate(
            {"model": args.model}, [f"clips={corpus}"], Path(args.scratch) / f"eval-{dtype}-{batch_size}",
            batch_size=batch_size, max_new_tokens=round(4 * args.tokens_per_second), dtype=dtype, resamples=10,
            verbose=False,
        )  # fmt: skip
        result[f"rtfx_batch_{batch_size}"] = scores["clips"]["model"]["rtfx"]
    result["peak_rss_gib"] = peak_rss()
    return result


def part_train(args) -> dict:
    import torch

    from train.collator import SFTCollator
    from train.finetune import load_for_training

    model, processor = load_for_training(args.model, torch.bfloat16)
    model.train()
    rows = [{"audio": speech(5, index), "text": "Uma frase em português para treinar."} for index in range(2)]
    batch = SFTCollator(processor)(rows)
    result = {"load_peak_rss_gib": peak_rss()}
    for checkpointing in (False, True):
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        start = time.perf_counter()
        model(**batch).loss.backward()
        result[f"step_seconds_checkpointing_{'on' if checkpointing else 'off'}"] = time.perf_counter() - start
        result[f"peak_rss_gib_after_checkpointing_{'on' if checkpointing else 'off'}"] = peak_rss()
        model.zero_grad(set_to_none=True)
    return result


def first_tokens(model_dir: str, dtype: str, clips: list[np.ndarray], count: int) -> tuple[list[list[int]], dict]:
    """The first `count` tokens greedy decoding writes for each clip, through the model ASRModel loads, and the wall
    and CPU seconds the batch took (the two dtypes timed back to back, under the same load)."""
    from asr_pt.models import ASRModel, release_memory

    qwen = ASRModel(model_dir, dtype=dtype).load()
    prompt = qwen._build_text_prompt(context="", force_language="Portuguese")
    inputs = qwen.processor(text=[prompt] * len(clips), audio=clips, return_tensors="pt", padding=True)
    inputs = inputs.to(qwen.model.dtype)
    start, cpu = time.perf_counter(), time.process_time()
    sequences = qwen.model.generate(**inputs, max_new_tokens=count, do_sample=False).sequences
    timing = {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}
    tokens = sequences[:, inputs["input_ids"].shape[1] :].tolist()
    del qwen, inputs
    release_memory()
    return tokens, timing


def agreement(reference: list[list[int]], other: list[list[int]]) -> dict:
    """How many clips get the same first token, and how many leading tokens agree on average."""
    prefixes = []
    for ours, theirs in zip(reference, other, strict=True):
        same = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b), len(ours))
        prefixes.append(same)
    return {"first_token_agrees": sum(p > 0 for p in prefixes) / len(prefixes), "agreeing_prefix": prefixes}


def part_agreement(args, dtype: str) -> dict:
    """First tokens of `dtype` against float32 at the 1.7B shape (one model in memory at a time)."""
    clips = [speech(5, index) for index in range(args.agreement_clips)]
    reference, float32_timing = first_tokens(args.model, "float32", clips, args.agreement_tokens)
    other, other_timing = first_tokens(args.model, dtype, clips, args.agreement_tokens)
    timings = {"float32_batch": float32_timing, f"{dtype}_batch": other_timing, "tokens": args.agreement_tokens}
    return agreement(reference, other) | timings | {"peak_rss_gib": peak_rss()}


def part_tiny_agreement(args, dtype: str) -> dict:
    """`dtype` against float32 on a tiny model trained to transcribe eight clips (as the loop test trains it)."""
    from asr_pt.metrics import score
    from asr_pt.models import ASRModel
    from asr_pt.tiny_model import build_tiny_model

    sentences = SENTENCES_PATH.read_text(encoding="utf-8").splitlines()[:8]
    folder = speak_corpus(sentences, tempfile.mkdtemp(dir=args.scratch))
    base = build_tiny_model(folder / "tiny", seed=1, hidden_size=128, audio_initializer_range=0.3)
    command = [
        sys.executable, "-m", "train", "--base-model", str(base), "--dataset", str(folder), "--output",
        str(folder / "trained"), "--max-steps", "100", "--batch-size", "4", "--grad-accum", "1", "--lr", "1e-2",
        "--warmup-ratio", "0.05", "--eval-steps", "1000", "--workers", "0",
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, cwd=REPO)
    audios = [load_audio(folder / f"clip{index:03d}.wav") for index in range(len(sentences))]
    texts = {}
    for name in ("float32", dtype):
        model = ASRModel(str(folder / "trained"), dtype=name, max_new_tokens=24)
        texts[name] = [t.text for t in model.transcribe_batch(audios)]
    return {
        "wer_float32": score(sentences, texts["float32"]).wer,
        f"wer_{dtype}": score(sentences, texts[dtype]).wer,
        f"wer_{dtype}_against_float32": score(texts["float32"], texts[dtype]).wer,
        "identical_texts": sum(a == b for a, b in zip(texts["float32"], texts[dtype], strict=True)),
    }


def part_paired(args) -> dict:
    """One 5 s clip in each dtype back to back (one model in memory at a time, after a short warm-up clip), so that
    the dtypes are compared under the same load."""
    from asr_pt.models import ASRModel, release_memory

    clip, warm_up, result = speech(5), speech(2), {}
    for dtype in args.paired_dtypes:
        model = ASRModel(args.model, dtype=dtype, max_new_tokens=round(5 * args.tokens_per_second))
        model.transcribe(warm_up)
        start, cpu = time.perf_counter(), time.process_time()
        model.transcribe(clip)
        result[dtype] = {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}
        del model
        release_memory()
    return result | {"peak_rss_gib": peak_rss()}


def run_part(args, part: str) -> dict:
    name, _, dtype = part.partition(":")
    functions = {"build": part_build, "model": part_model, "app": part_app, "eval": part_eval, "train": part_train}
    functions |= {"agreement": part_agreement, "tiny-agreement": part_tiny_agreement, "paired": part_paired}
    return functions[name](args, dtype) if dtype else functions[name](args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a 1.7B-shaped checkpoint folder (python -m asr_pt random-model)")
    parser.add_argument("other", help="a second one, for the app's two models")
    parser.add_argument("--parts", nargs="+", default=list(PARTS), help=f"any of {' '.join(PARTS)}, or DTYPE variants")
    parser.add_argument("--tokens-per-second", type=float, default=4.0, help="new tokens per second of audio")
    parser.add_argument("--long-clip-dtypes", nargs="*", default=["float32", "int8"], help="dtypes that run 20 s")
    parser.add_argument("--eval-clips", type=int, default=16)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--paired-dtypes", nargs="+", default=["int8", "bfloat16", "float32"])
    parser.add_argument("--agreement-clips", type=int, default=4)
    parser.add_argument("--agreement-tokens", type=int, default=8)
    parser.add_argument("--scratch", default=tempfile.gettempdir(), help="folder for clips and the built checkpoint")
    parser.add_argument("--in-process", help=argparse.SUPPRESS)  # one part, in this process (the runner's child)
    args = parser.parse_args()

    if args.in_process:
        print(json.dumps(run_part(args, args.in_process)), flush=True)
        return
    for part in args.parts:
        load = os.getloadavg()[0]
        child = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--in-process", part], capture_output=True, text=True
        )
        if child.returncode:
            print(f"{part}: failed\n{child.stderr[-2000:]}", flush=True)
            continue
        result = json.loads(child.stdout.strip().splitlines()[-1])
        result["load_average_before_after"] = [round(load, 2), round(os.getloadavg()[0], 2)]
        print(f"{part}: {json.dumps(result)}", flush=True)


if __name__ == "__main__":
    main()
