"""The card column is the seed author's protocol: eval against a re-implementation, written here from a reading of
`evaluate_model` (src/training/train_qwen3_asr.py) and `normalize_written_form` (src/evaluation/score_written_form.py)
in yuriyvnv/TTS-Augmented-ASR, on the same tiny model and clips."""

from __future__ import annotations

import json
import re

import jiwer
import numpy as np
import soundfile
import torch

from eval.run import evaluate

MAX_NEW_TOKENS = 12  # the author's default is 128; both sides use the same value here to keep the test short


def authors_written_form(sentence: str) -> str:
    s = sentence.strip()
    if not s:
        return s
    s = re.sub(r"[.…]+$", ".", s)
    if s[0].islower():
        s = s[0].upper() + s[1:]
    if s[-1] not in set(".!?…") | set(")]}\"'»”’›"):
        s += "."
    return s


def authors_evaluate(model_dir: str, clips: list, sentences: list[str], batch_size: int = 8) -> tuple[list, dict]:
    from qwen_asr import Qwen3ASRModel

    wrapper = Qwen3ASRModel.from_pretrained(model_dir, dtype=torch.float32, device_map="cpu")
    model, processor = wrapper.model, wrapper.processor
    model.eval()
    refs = [authors_written_form(s).strip() for s in sentences]
    audio = [np.asarray(soundfile.read(str(clip))[0], dtype=np.float32) for clip in clips]
    prompt = (
        processor.apply_chat_template(
            [[{"role": "system", "content": ""}, {"role": "user", "content": [{"type": "audio", "audio": None}]}]],
            add_generation_prompt=True,
            tokenize=False,
        )[0]
        + "language Portuguese<asr_text>"
    )
    hyps = []
    with torch.no_grad():
        for i in range(0, len(audio), batch_size):
            sub = audio[i : i + batch_size]
            inputs = processor(text=[prompt] * len(sub), audio=sub, return_tensors="pt", padding=True).to(model.device)
            inputs = {k: v.to(model.dtype) if v.dtype.is_floating_point else v for k, v in inputs.items()}
            out = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
            ids = out.sequences if hasattr(out, "sequences") else out
            decoded = processor.batch_decode(
                ids[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True, clean_up_tokenization_spaces=False
            )
            hyps += [d.strip() for d in decoded]
    return hyps, {"wer": round(jiwer.wer(refs, hyps) * 100, 2), "cer": round(jiwer.cer(refs, hyps) * 100, 2)}


def test_eval_gives_the_authors_hypotheses_and_scores(tmp_path, tiny_model_dir, audiofolder_corpus, speech_clips):
    # A row from before eval took the raw decode (no "decode" field) is transcribed again, not reused.
    (tmp_path / "out").mkdir()
    source = f"{audiofolder_corpus.resolve()}?split=test"
    stale = {"dataset": "af", "source": source, "model": "tiny", "model_id": str(tiny_model_dir), "id": "clip00.wav"}
    stale |= {"reference": speech_clips[0][1], "hypothesis": "qwen-asr's parsed text", "wer": 0.0, "cer": 0.0}
    (tmp_path / "out" / "predictions.jsonl").write_text(json.dumps(stale) + "\n", encoding="utf-8")
    results = evaluate(
        {"tiny": str(tiny_model_dir)},
        [f"af={audiofolder_corpus}"],
        tmp_path / "out",
        max_new_tokens=MAX_NEW_TOKENS,
        resamples=100,
        verbose=False,
    )
    lines = (tmp_path / "out" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    hypotheses = [json.loads(line)["hypothesis"] for line in lines[1:]]
    expected, scores = authors_evaluate(str(tiny_model_dir), [p for p, _ in speech_clips], [s for _, s in speech_clips])
    assert hypotheses == expected
    assert any(len(h) > 0 for h in hypotheses)
    assert (results["af"]["tiny"]["wer"], results["af"]["tiny"]["cer"]) == (scores["wer"], scores["cer"])
