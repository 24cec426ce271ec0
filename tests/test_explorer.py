"""The Explorer: an eval folder opened, filtered and sent to review; bad folders, cut files and missing clips; closed
to visitors; and the whole tab in Chromium."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import gradio as gr
import pytest
from conftest import free_port
from playwright.sync_api import expect, sync_playwright

from asr_pt.explore import ExploreError, eval_folders, filter_table, open_eval, open_utterance, send_to_review
from asr_pt.models import ASRModel
from asr_pt.review.logins import LoginThrottle, ReviewerSessions
from asr_pt.review.reviewers import hash_password
from asr_pt.review.store import ReviewStore
from asr_pt.settings import DEFAULTS
from asr_pt.ui import Models, build_demo, launch
from asr_pt.ui.explorer import ExplorerTab
from asr_pt.ui.login import NOT_LOGGED_IN, Login, ReviewAccess

FIELDS = [{"gender": "female", "accents": "Brasil"}, {"gender": "male", "accents": "Portugal"}]


def prediction(model: str, index: int, reference: str, hypothesis: str, wer: float, audio: str | None) -> dict:
    return {
        "dataset": "cv",
        "source": "/data/cv-corpus/pt?split=test",
        "model": model,
        "model_id": f"/models/{model}",
        "id": f"clip{index}.wav",
        "reference": reference,
        "hypothesis": hypothesis,
        "wer": wer,
        "cer": 0.0,
        "audio_seconds": 2.0 + index * 2,
        "seconds": 0.1,
        "truncated": False,
        "language": "Portuguese",
        "audio": audio,
        "fields": FIELDS[index % 2],
    }


def write_eval(folder: Path, clips: list[tuple[Path, str]], cut: bool = False) -> Path:
    """An eval folder by hand: base right on clip 0 and wrong on clip 1, fine-tuned the other way round, clip 2 the
    same for both and its audio missing; with `cut`, a last line cut off mid-way as a killed run leaves it."""
    folder.mkdir(parents=True)
    audio = [str(clips[0][0]), str(clips[1][0]), str(folder / "gone.wav")]
    rows = []
    for model, wers in (("base", [0.0, 100.0, 50.0]), ("fine-tuned", [100.0, 0.0, 50.0])):
        for index in range(3):
            reference = clips[index][1]
            hypothesis = reference if wers[index] == 0 else "outra coisa"
            rows.append(prediction(model, index, reference, hypothesis, wers[index], audio[index]))
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    (folder / "predictions.jsonl").write_text(text + ('{"dataset": "cv", "mod' if cut else ""), encoding="utf-8")
    (folder / "results.json").write_text(json.dumps({"cv": {"base": {}, "fine-tuned": {}}}), encoding="utf-8")
    return folder


def test_open_filter_and_send_to_review(tmp_path, speech_clips):
    view = open_eval(write_eval(tmp_path / "runs" / "eval-cv", speech_clips, cut=True))
    assert (view.baseline, view.candidate) == ("base", "fine-tuned")
    assert list(view.table["Δ WER"]) == [100.0, -100.0, 0.0]
    assert list(view.table["gender"]) == ["female", "male", "female"]
    assert list(view.table["duration"]) == ["< 3 s", "3-5 s", "5-8 s"]
    assert "ends in the middle of a line" in view.summary() and "3 utterances" in view.summary()

    assert list(filter_table(view, worse_only=True).index) == ["cv/clip0.wav"]
    assert list(filter_table(view, wer_above=40).index) == ["cv/clip0.wav", "cv/clip2.wav"]
    assert list(filter_table(view, slice_value="accents = Portugal").index) == ["cv/clip1.wav"]
    assert list(filter_table(view, sort_by="seconds").index) == ["cv/clip2.wav", "cv/clip1.wav", "cv/clip0.wav"]
    assert "gender = male" in view.slice_choices() and "duration = 3-5 s" in view.slice_choices()

    opened = open_utterance(view, "cv/clip0.wav")
    assert opened.audio is not None and opened.audio.size > 16000 and not opened.audio_problem
    assert opened.reference == speech_clips[0][1] and opened.hypotheses["fine-tuned"] == "outra coisa"
    assert any(tag for _, tag in opened.diffs["fine-tuned"]) and not any(tag for _, tag in opened.diffs["base"])
    missing = open_utterance(view, "cv/clip2.wav")
    assert missing.audio is None and "cannot be read" in missing.audio_problem and missing.reference

    store = ReviewStore(tmp_path / "data")
    report = send_to_review(view, ["cv/clip0.wav", "cv/clip2.wav", "cv/nothing"], store)
    assert (report.queued, report.test_split) == (1, 1)
    assert "clip2.wav: its audio cannot be read" in report.message() and "not an utterance" in report.message()
    item = store.get(1)
    assert (item.source, item.source_id, item.source_split, item.reference) == (
        "cv",
        "clip0.wav",
        "test",
        speech_clips[0][1],
    )
    assert (item.hypothesis_finetuned, item.hypothesis_base) == ("outra coisa", speech_clips[0][1])
    assert (item.model_finetuned, item.model_base) == ("/models/fine-tuned", "/models/base")
    assert send_to_review(view, ["cv/clip0.wav"], store).already_queued == 1


def test_only_listed_eval_folders_open_and_a_folder_that_is_not_an_eval_says_so(tmp_path, speech_clips):
    root = tmp_path / "runs"
    write_eval(root / "eval-cv", speech_clips)
    write_eval(root / "round-2" / "eval", speech_clips)
    (root / "notes").mkdir()
    assert list(eval_folders(root)) == ["eval-cv", "notes", "round-2", "round-2/eval"]
    with pytest.raises(ExploreError, match="notes is not an eval output: it has no predictions.jsonl"):
        open_eval(root / "notes")
    (root / "empty").mkdir()
    (root / "empty" / "predictions.jsonl").write_text("not json\n", encoding="utf-8")
    with pytest.raises(ExploreError, match="holds no predictions .line 1 is not a prediction"):
        open_eval(root / "empty")

    store = ReviewStore(tmp_path / "data")
    access = ReviewAccess(oauth=False, reviewers={"ana": hash_password("segredo")}, allowlist=set())
    with gr.Blocks():
        login = Login(access, ReviewerSessions(), LoginThrottle(first_delay=0))
        tab = ExplorerTab(store, login, root)
    forged = "a-token-no-session-has"
    for call in (
        lambda: tab.folders(forged),
        lambda: tab.open(None, "eval-cv"),
        lambda: tab.filter(None, None, True, None, None, None),
        lambda: tab.choose(None, [], "cv/clip0.wav"),
        lambda: tab.clear(None),
        lambda: tab.send(None, open_eval(root / "eval-cv"), ["cv/clip0.wav"]),
    ):
        with pytest.raises(gr.Error, match=NOT_LOGGED_IN):
            call()
    token = login.sessions.open("ana")
    for name in ("../../etc", str(root / "eval-cv"), "notes"):
        with pytest.raises(gr.Error):
            tab.open(token, name)
    view, summary, *_ = tab.open(token, "round-2/eval")
    assert view.folder == root / "round-2" / "eval" and "3 utterances" in summary
    assert store.counts()["pending"] == 0


def test_explorer_in_chromium(tmp_path, speech_clips, tiny_model_dir, other_tiny_model_dir):
    expect.set_options(timeout=60_000)
    root = tmp_path / "runs"
    write_eval(root / "eval-cv", speech_clips, cut=True)
    shutil.copytree(root / "eval-cv", root / "eval-copy")
    store = ReviewStore(tmp_path / "data")
    access = ReviewAccess(oauth=False, reviewers={"ana": hash_password("segredo")}, allowlist=set())
    models = Models(ASRModel(str(tiny_model_dir)), ASRModel(str(other_tiny_model_dir)))
    demo = build_demo(models, replace(DEFAULTS, eval_dir=root), store=store, access=access)
    port = free_port()
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"http://127.0.0.1:{port}")
            page.get_by_role("tab", name="Review").click()
            page.get_by_label("Reviewer name").fill("ana")
            page.get_by_label("Password").fill("segredo")
            page.locator("#login-button").click()
            expect(page.locator("#review-who")).to_contain_text("Reviewing as")
            page.get_by_role("tab", name="Explorer").click()
            page.locator("#explorer-folder input").click()
            page.get_by_role("option", name="eval-cv", exact=True).click()
            page.locator("#explorer-open").click()
            expect(page.locator("#explorer-summary textarea")).to_have_value(
                "3 utterances of 1 dataset(s), models base (baseline) and fine-tuned.\n"
                "- predictions.jsonl ends in the middle of a line (a run still writing, or cut off): skipped"
            )
            expect(page.locator("#explorer-count textarea")).to_have_value("3 of 3 utterances")
            page.get_by_label("Fine-tune worse than base").check()
            expect(page.locator("#explorer-count textarea")).to_have_value("1 of 3 utterances")
            page.get_by_label("Fine-tune worse than base").uncheck()
            page.get_by_label("Fine-tune WER above (%), 0 for any").fill("40")
            page.get_by_label("Fine-tune WER above (%), 0 for any").press("Enter")
            expect(page.locator("#explorer-count textarea")).to_have_value("2 of 3 utterances")
            page.locator("#explorer-table [data-testid^=cell-]", has_text="clip0.wav").click()
            expect(page.locator("#explorer-reference textarea")).to_have_value(speech_clips[0][1])
            expect(page.locator("#explorer-hyp-candidate textarea")).to_have_value("outra coisa")
            expect(page.locator("#explorer-audio-problem textarea")).to_have_value("playable")
            expect(page.locator("#explorer-audio audio, #explorer-audio .waveform-container").first).to_be_attached()
            page.locator("#explorer-choose").click()
            expect(page.locator("#explorer-selected textarea")).to_have_value("cv/clip0.wav")
            page.locator("#explorer-send").click()
            expect(page.locator("#explorer-sent textarea")).to_have_value(re.compile(r"^Queued 1 clip\(s\) for review"))
            browser.close()
    finally:
        demo.close()
    assert store.get(1).source_id == "clip0.wav" and store.counts()["pending"] == 1
