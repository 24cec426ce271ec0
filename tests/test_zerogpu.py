"""The Space as ZeroGPU runs it: `python app.py` under tests/zerogpu's stand-in for `spaces` (every `spaces.GPU` call
in a forked worker, arguments and results pickled, a model run in the main process refused, each call counted), spoken
to over raw HTTP as a browser does. Each model-using tab works there and makes the GPU calls it should; none when
word timings are unticked; `/status` learns the real-time factors measured in the workers."""

from __future__ import annotations

import math

import httpx
import numpy as np
import pytest
import soundfile as sf
from conftest import ZEROGPU_REVIEWER, ServedApp
from gradio_client import Client
from playwright.sync_api import expect, sync_playwright
from test_app_abuse import Visitor
from test_app_browser import TIMEOUT_MS, open_page, transcribe_and_wait

from asr_pt.compare import BASE, FINETUNED
from asr_pt.models import ASRModel
from asr_pt.review.store import ReviewStore
from asr_pt.ui import Models
from asr_pt.ui.gpu import on_gpu

TRANSCRIBE = "make_transcribe.<locals>.run"
TIME_TEXTS = "WordTimer.__init__.<locals>.time_texts"
MANY_FILES = "BatchTranscriber._transcribe_uploads"


@pytest.fixture(scope="module")
def app(zerogpu_app: ServedApp) -> ServedApp:
    return zerogpu_app


def new_calls(app: ServedApp, before: int) -> list[dict]:
    """The GPU calls finished since `before` of them had."""
    return app.gpu_calls()[before:]


def models_seconds(audio_seconds: float) -> int:
    return math.ceil(30 + audio_seconds / 2)


def test_no_model_runs_at_start_and_transcribe_runs_in_one_gpu_call_that_status_learns_from(app, speech_clips):
    status = Client(app.url, verbose=False).predict(api_name="/status")
    assert [status[side]["rtf"] for side in (FINETUNED, BASE)] == [None, None]  # no warm-up outside a GPU call
    assert app.gpu_calls() == [] and "MainProcessModelWork" not in app.log.read_text()
    path, sentence = speech_clips[1]
    message = Visitor(app.url).transcribe(path, reference=sentence)
    assert message["success"], message
    result = message["output"]["data"][0]
    [call] = app.gpu_calls()
    assert call["function"] == TRANSCRIBE and call["outcome"] == "ok" and call["new_worker"]
    assert call["duration"] == models_seconds(sf.info(path).duration)  # 30 s plus half the clip
    status = Client(app.url, verbose=False).predict(api_name="/status")
    for side in (FINETUNED, BASE):
        transcript = result["runs"][side]["transcript"]
        assert transcript["language"] == "Portuguese" and transcript["rtf"] > 0
        assert status[side]["rtf"] == pytest.approx(transcript["rtf"])  # measured in the worker, recorded here
        assert status[side]["state"] == "ready" and status[side]["waiting"] == 0


def test_bad_input_is_told_in_its_words_from_the_worker(app, speech_clips):
    before = len(app.gpu_calls())
    message = Visitor(app.url).call("transcribe", [None, "Portuguese", "", ""])  # refused before any GPU call
    assert not message["success"] and "no audio" in message["output"]["error"]
    assert new_calls(app, before) == []
    emoji = "🙂" * 1000  # within the box's characters, past the model's context tokens: refused in the worker
    visitor = Visitor(app.url)
    message = visitor.call("transcribe", [visitor.upload(speech_clips[0][0]), "Portuguese", emoji, ""])
    assert not message["success"] and "the context is too long" in message["output"]["error"]
    [call] = new_calls(app, before)
    assert call["function"] == TRANSCRIBE and call["outcome"] == "error"


def test_word_timings_run_in_a_gpu_call_only_when_ticked(app, speech_clips):
    path, sentence = speech_clips[2]
    visitor = Visitor(app.url)
    transcribed = visitor.transcribe(path)
    assert transcribed["success"], transcribed
    result = transcribed["output"]["data"][0]
    before = len(app.gpu_calls())
    unticked = visitor.call("time_transcripts", [False, None, result])
    assert unticked["success"] and unticked["output"]["data"][1:] == ["", ""]
    assert new_calls(app, before) == []  # no GPU asked for
    ticked = visitor.call("time_transcripts", [True, None, result])  # the clip and texts: the session's, on the server
    assert ticked["success"], ticked
    views = ticked["output"]["data"][1:]
    texts = [result["runs"][side]["transcript"]["text"] for side in (FINETUNED, BASE)]
    for view, text in zip(views, texts, strict=True):
        assert view.count('class="timed-word"') == len(text.split()) > 0
    [call] = new_calls(app, before)  # both transcripts in one call
    assert call["function"] == TIME_TEXTS and call["outcome"] == "ok"
    assert call["duration"] == math.ceil(10 + 2 * sf.info(path).duration / 7)

    before = len(app.gpu_calls())
    timed = visitor.call("word_timings", [visitor.upload(path), sentence, "Portuguese"])
    assert timed["success"], timed
    words = timed["output"]["data"][0]
    assert [w["word"] for w in words] == sentence.split() and all(w["end"] >= w["start"] >= 0 for w in words)
    [call] = new_calls(app, before)
    assert call["function"] == TIME_TEXTS and call["duration"] == math.ceil(10 + sf.info(path).duration / 7)


def test_many_files_run_in_one_gpu_call_and_the_clips_it_kept_go_to_review(app, speech_clips):
    visitor = Visitor(app.url)
    paths = [path for path, _ in speech_clips[3:6]]
    before = len(app.gpu_calls())
    message = visitor.call("transcribe_many", [[visitor.upload(path) for path in paths], "Portuguese", None])
    assert message["success"], message
    rows = message["output"]["data"][0]
    assert [row["file"] for row in rows] == [path.name for path in paths]
    assert all(row["finetuned"] is not None and row["base"] is not None and row["error"] is None for row in rows)
    [call] = new_calls(app, before)
    assert call["function"] == MANY_FILES and call["outcome"] == "ok"
    assert call["duration"] == models_seconds(sum(sf.info(path).duration for path in paths))
    sent = visitor.call("send_all", [None])  # the clips the worker wrote to the session's folder, read here
    assert sent["success"] and sent["output"]["data"][0].startswith("Sent 3 new clips to review"), sent
    assert new_calls(app, before + 1) == []


def test_the_review_tabs_player_and_timings_for_the_served_reviewer(app):
    store = ReviewStore(app.log.parent / "data")  # the app's store: another process may queue into it
    rng = np.random.default_rng(0)
    store.add_item(
        (rng.standard_normal(32000) * 0.1).astype(np.float32),
        source_id="zerogpu",
        hypothesis_finetuned="o gato dorme",
        hypothesis_base="o gato come",
        model_finetuned="ft",
        model_base="base",
    )
    visitor = Visitor(app.url)
    before = len(app.gpu_calls())
    forged = visitor.call("time_item", ["forged", True, "1:0", "o gato dorme"])
    assert not forged["success"] and "Log in" in forged["output"]["error"]
    assert new_calls(app, before) == []  # the login is checked here, before any GPU call
    logged_in = visitor.call("log_in", list(ZEROGPU_REVIEWER))
    token = logged_in["output"]["data"][0]
    assert logged_in["success"] and token, logged_in
    shown = visitor.call("_show_next_if_logged_in", [token])
    assert shown["success"], shown
    key, _, player = shown["output"]["data"][:3]
    assert httpx.get(player["url"]).status_code == 200  # the player's clip
    assert visitor.call("time_item", [token, False, key, "o gato dorme"])["output"]["data"][0] == ""  # unticked
    assert new_calls(app, before) == []
    timed = visitor.call("time_item", [token, True, key, "o gato dorme"])
    assert timed["success"] and timed["output"]["data"][0].count('class="timed-word"') == 3, timed
    [call] = new_calls(app, before)
    assert call["function"] == TIME_TEXTS and call["duration"] == math.ceil(10 + 2.0 / 7)


@pytest.fixture(scope="module")
def playwright():
    with sync_playwright() as p:
        yield p


def test_transcribe_with_word_timings_in_chromium(app, playwright, speech_clips):
    before = len(app.gpu_calls())
    browser, page = open_page(playwright, app.url)
    try:
        page.locator("#timings-tick input").check()  # before any clip: nothing to time, no GPU asked for
        page.get_by_label("Upload file").click()
        page.locator("#audio-input input[type=file]").set_input_files(str(speech_clips[6][0]))
        expect(page.locator("#audio-input")).to_contain_text("0:0")
        transcribe_and_wait(page)
        for side in (FINETUNED, BASE):
            expect(page.locator(f"#{side}-timings .timed-word").first).to_be_visible(timeout=TIMEOUT_MS)
        text = page.locator(f"#{FINETUNED}-text textarea").input_value()
    finally:
        browser.close()
    assert text
    assert [call["function"] for call in new_calls(app, before)] == [TRANSCRIBE, TIME_TEXTS]
    assert "MainProcessModelWork" not in app.log.read_text()


def test_the_review_tabs_player_times_the_item_in_chromium(app, playwright):
    ReviewStore(app.log.parent / "data").add_item(
        (np.random.default_rng(1).standard_normal(16000) * 0.1).astype(np.float32),
        source_id="zerogpu-browser",
        hypothesis_finetuned="um dois três quatro",
        hypothesis_base="um dois",
        model_finetuned="ft",
        model_base="base",
    )
    browser, page = open_page(playwright, app.url)
    try:
        page.get_by_role("tab", name="Review").click()
        page.get_by_label("Reviewer name").fill(ZEROGPU_REVIEWER[0])
        page.get_by_label("Password").fill(ZEROGPU_REVIEWER[1])
        page.locator("#login-button").click()
        editor = page.locator("#review-editor textarea")
        expect(editor).not_to_have_value("")
        first = editor.input_value()
        before = len(app.gpu_calls())
        page.locator("#review-timings-tick input").check()
        words = page.locator("#review-timings .timed-word")
        expect(words).to_have_count(len(first.split()))
        page.locator("#review-skip").click()  # the next item's clip reaches the player, which times it
        expect(editor).not_to_have_value(first)
        expect(words).to_have_count(len(editor.input_value().split()))
    finally:
        browser.close()
    calls = new_calls(app, before)
    assert [call["function"] for call in calls] == [TIME_TEXTS, TIME_TEXTS] and all(c["outcome"] == "ok" for c in calls)


def test_a_request_in_a_worker_counts_as_waiting_and_busy_here(tiny_model_dir):
    model = ASRModel(str(tiny_model_dir))
    models = Models(model, ASRModel(str(tiny_model_dir)))
    with model.running_in_worker():
        assert models.status()[FINETUNED]["waiting"] == 1 and model.busy
        assert models.status()[BASE]["waiting"] == 0
    assert model.waiting == 0 and not model.busy
    model.record_rtf(0.5)
    count = model.rtf_count
    model.record_rtf(0.25)
    assert model.rtfs_since(count) == [0.25] and model.rtfs_since(count + 1) == []
    assert model.measured_rtf == pytest.approx(0.375)


def test_off_zerogpu_the_work_is_called_as_it_is():
    """A CPU Space (with `spaces` installed or not) and this machine: no worker, no pickling, the function itself."""

    def work(samples: np.ndarray) -> float:
        return float(samples.sum())

    assert on_gpu(work, lambda samples: 1, zero_gpu=False) is work
