"""Word timings in the app: the page's functions, the `/word_timings` endpoint (also as an anonymous attacker over
raw HTTP), and the page in Chromium."""

import json
import re
from html.parser import HTMLParser

import gradio as gr
import httpx
import numpy as np
import pytest
import srt
from conftest import DEMO_MAX_SECONDS, free_port
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from playwright.sync_api import expect, sync_playwright
from qwen_asr.inference.qwen3_forced_aligner import Qwen3ForceAlignProcessor
from test_app_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, open_page, transcribe_and_wait
from test_review_app import queue_clips, review_page, tiny_models

from asr_pt.alignment import MAX_TEXT_CHARS, Aligner, WordTiming
from asr_pt.audio import load_audio, to_pcm16, write_wav
from asr_pt.review.reviewers import hash_password
from asr_pt.review.store import ReviewStore
from asr_pt.ui import build_demo, launch
from asr_pt.ui.login import NOT_LOGGED_IN, ReviewAccess
from asr_pt.ui.send_to_review import LastClip
from asr_pt.ui.timings import WordTimer, item_timings, seek, transcript_timings, words_html

INJECTION = (
    "<img src=x onerror=window.pwned=1> ${window.pwned=2} {{constructor}} `x` \" ' &amp; <script>pwned=3</script>"
)


@pytest.fixture(scope="module")
def timer(tiny_aligner_dir) -> WordTimer:
    return WordTimer(Aligner(str(tiny_aligner_dir)))


@pytest.fixture(scope="module")
def playwright():
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def reviewers() -> ReviewAccess:
    return ReviewAccess(oauth=False, reviewers={"ana": hash_password("segredo")}, allowlist=set())


@pytest.fixture(scope="module")
def client(demo_url):
    return Client(demo_url, verbose=False)


class Tags(HTMLParser):
    """Every tag and attribute name in a piece of HTML."""

    def __init__(self, markup: str):
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.text = ""
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)

    def handle_data(self, data):
        self.text += data


def test_timed_words_are_text_whatever_they_hold():
    words = [WordTiming(word, i * 0.5, i * 0.5 + 0.4) for i, word in enumerate(INJECTION.split())]
    markup = words_html('Fine-tuned <b onclick="x">', words, "fine-tuned")
    parsed = Tags(markup)
    assert parsed.tags == {"p", "div", "button", "sup", "a"}  # only what the page builds
    assert parsed.attributes == {"class", "type", "data-start", "title", "download", "href"}
    assert "window.pwned" in parsed.text and "<img" in parsed.text  # shown, as text
    assert 'data-start="1.000"' in markup
    links = [part.split('"')[0] for part in markup.split('href="')[1:]]
    assert [link.split(",")[0] for link in links] == [
        "data:application/x-subrip;charset=utf-8",
        "data:text/vtt;charset=utf-8",
    ]
    assert all(not set("<>\"' ") & set(link) for link in links)  # percent-encoded: nothing leaves the attribute
    assert Tags(words_html("Base", "the model <b>failed</b>", "base")).tags == {"p"}


def last_clip(path, texts: dict) -> LastClip:
    """The session's last comparison as the Transcribe tab keeps it on the server."""
    return LastClip(pcm=to_pcm16(load_audio(path)), reference="", texts=texts, model_ids={})


def test_the_transcribe_box_times_both_transcripts_and_survives_a_forged_result(timer, speech_clips):
    path, sentence = speech_clips[2]
    last = last_clip(path, {"finetuned": sentence, "base": None})
    result = {"runs": {"finetuned": {"transcript": {"text": sentence, "language": "Portuguese"}}}}
    status, finetuned, base = transcript_timings(timer, True, last, result)
    assert "ready" in status and Tags(finetuned).text.count("Subtitles") == 1
    assert finetuned.count('class="timed-word"') == len(sentence.split())
    assert "could not be loaded" in base
    assert transcript_timings(timer, False, last, result)[1:] == ["", ""]  # unticked
    assert transcript_timings(timer, True, None, result)[1:] == ["", ""]  # a new clip, not transcribed yet
    for forged in (None, "runs", {"runs": "x"}, {"runs": {"finetuned": 5}}):  # the language falls back to Portuguese
        assert transcript_timings(timer, True, last, forged)[1] == finetuned
    forged = {"runs": {"finetuned": {"transcript": {"text": "not what is aligned", "language": {"not": "a language"}}}}}
    assert "transcript&#x27;s language" in transcript_timings(timer, True, last, forged)[1]
    too_long = last_clip(path, {"finetuned": "palavra " * MAX_TEXT_CHARS, "base": ""})
    _, finetuned, base = transcript_timings(timer, True, too_long, result)
    assert "too long to time" in finetuned and "no transcript to time" in base


def test_an_unavailable_aligner_is_explained_and_nothing_else_breaks(tmp_path, speech_clips):
    missing = WordTimer(Aligner(str(tmp_path / "no-aligner")))
    last = last_clip(speech_clips[0][0], {"finetuned": "olá", "base": "olá"})
    status, finetuned, base = transcript_timings(missing, True, last, None)
    assert "Word timings are unavailable" in status and "ASR_PT_ALIGNER_MODEL" in status
    assert "no folder" in finetuned and "no folder" in base


def test_review_timings_are_for_reviewers_only(timer, tmp_path, reviewers):
    store = ReviewStore(tmp_path / "data")
    queue_clips(store, 1)
    review, _ = review_page(store, reviewers, tmp_path / "handouts")
    login = review.login
    for token in (None, "", "forged"):
        with pytest.raises(gr.Error, match=NOT_LOGGED_IN):
            item_timings(timer, store, login, token, True, "1:0", "O gato dorme.")
    token = review.log_in("ana", "segredo", None)[0]
    assert item_timings(timer, store, login, token, True, "1:0", "O gato dorme.") == ""  # nothing shown to her yet
    key = review.show_next(token)[0]
    assert item_timings(timer, store, login, token, False, key, "O gato dorme.") == ""  # unticked
    assert item_timings(timer, store, login, None, True, "", "O gato dorme.") == ""  # logged out: nothing on screen
    markup = item_timings(timer, store, login, token, True, "9:9", "O gato dorme.")  # the item is hers, not the key's
    assert markup.count('class="timed-word"') == 3 and "item-1.srt" in markup


def test_a_click_moves_the_player_only_to_a_number():
    assert seek(gr.EventData(None, {"start": 1.25})).playback_position == 1.25
    for forged in ({"start": "abc"}, {"start": None}, {}, "start", ["start"]):
        assert seek(gr.EventData(None, forged)) == gr.skip()
    for far in (-5, "inf", 1e309, "nan"):
        assert seek(gr.EventData(None, {"start": far})).playback_position == 0.0


def test_the_endpoint_times_a_clip_as_gradio_client_users_see_it(client, speech_clips):
    path, sentence = speech_clips[3]
    words = client.predict(handle_file(str(path)), sentence, "Portuguese", api_name="/word_timings")
    assert [word["word"] for word in words] == sentence.split()
    assert all(set(word) == {"word", "start", "end"} and 0 <= word["start"] <= word["end"] for word in words)


def test_the_endpoint_refuses_bad_input_with_a_clear_message(client, speech_clips, tmp_path):
    path, sentence = speech_clips[3]
    with pytest.raises(AppError, match="too long to time"):
        client.predict(handle_file(str(path)), "palavra " * MAX_TEXT_CHARS, "Portuguese", api_name="/word_timings")
    with pytest.raises(AppError, match="transcript's language"):
        client.predict(handle_file(str(path)), sentence, "Klingon", api_name="/word_timings")
    with pytest.raises(AppError, match="no text to time"):
        client.predict(handle_file(str(path)), "", "Portuguese", api_name="/word_timings")
    long_clip = tmp_path / "long.wav"
    write_wav(long_clip, np.zeros(int((DEMO_MAX_SECONDS + 1) * 16000), dtype=np.float32))
    with pytest.raises(AppError, match=f"too long.*limit is {DEMO_MAX_SECONDS:g} s"):
        client.predict(handle_file(str(long_clip)), sentence, "Portuguese", api_name="/word_timings")


def call_raw(url: str, data: list) -> tuple[str, str]:
    """An anonymous visitor's request to `/word_timings` over plain HTTP: (event, data) of its last message."""
    event_id = httpx.post(f"{url}gradio_api/call/word_timings", json={"data": data}, timeout=60).json()["event_id"]
    stream = httpx.get(f"{url}gradio_api/call/word_timings/{event_id}", timeout=120).text
    event, payload = None, None
    for line in stream.splitlines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            payload = line.removeprefix("data: ")
    return event, payload


def test_forged_requests_over_raw_http_are_refused(demo_url, speech_clips):
    upload = httpx.post(f"{demo_url}gradio_api/upload", files={"files": open(speech_clips[0][0], "rb")}).json()[0]
    clip = {"path": upload, "meta": {"_type": "gradio.FileData"}}
    event, payload = call_raw(demo_url, [clip, speech_clips[0][1], "Portuguese"])
    assert event == "complete" and len(json.loads(payload)[0]) == len(speech_clips[0][1].split())

    def forged_file(path: str) -> dict:
        return {"path": path, "meta": {"_type": "gradio.FileData"}}

    attacks = [  # what the caller sends, and what the error says (Gradio's own refusals say nothing)
        ([forged_file("/etc/passwd"), "root", "Portuguese"], "null"),  # not an upload
        ([forged_file(f"{demo_url}gradio_api/info"), "olá", "Portuguese"], "null"),  # no requests on our behalf
        ([forged_file("http://169.254.169.254/latest/meta-data"), "olá", "Portuguese"], "null"),
        ([clip, "olá " * 100_000, "Portuguese"], "too long to time"),  # 400,000 characters
        ([clip, "olá", {"language": "forged"}], "transcript's language"),
        ([clip, "olá", "../../etc/passwd"], "transcript's language"),
        ([None, "olá", "Portuguese"], "no audio"),
        ([clip, None, None], "no text to time"),
    ]
    for data, message in attacks:
        event, payload = call_raw(demo_url, data)
        assert event == "error" and message in payload, (data, event, payload)
    for text in (["a", "list"], {"text": "a dict"}, 12345):  # the text box turns any value into a string
        event, payload = call_raw(demo_url, [clip, text, "Portuguese"])
        assert event == "complete" and [w["word"] for w in json.loads(payload)[0]] == str(text).split()
    assert "root:" not in payload
    event, _ = call_raw(demo_url, [clip, speech_clips[0][1], "Portuguese"])
    assert event == "complete"  # still serving


def test_tick_word_timings_and_click_a_word_to_play_from_there(playwright, demo_url, speech_clips):
    browser, page = open_page(playwright, demo_url)
    try:
        page.get_by_label("Upload file").click()
        page.locator("#audio-input input[type=file]").set_input_files(str(speech_clips[5][0]))
        expect(page.locator("#audio-input")).to_contain_text("0:0")
        page.locator("#timings-tick input").check()
        transcribe_and_wait(page)
        words = page.locator("#finetuned-timings .timed-word")
        expect(words.first).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.locator("#base-timings .timed-word").first).to_be_visible()
        expect(page.locator("#timings-status")).to_contain_text("ready")
        text = page.locator("#finetuned-text textarea").input_value()
        start = float(words.first.get_attribute("data-start"))
        before = page.locator("#audio-input #time").inner_text()
        words.first.click()
        expect(page.locator("#audio-input #time")).not_to_have_text(before)
        moved = page.locator("#audio-input #time").inner_text()
        expect(page.locator("#finetuned-timings .timed-word").first).to_be_visible()  # the timings stay
        srt_link = page.locator("#finetuned-timings a", has_text="SRT")
        with page.expect_download() as download:
            srt_link.click()
        subtitles = open(download.value.path(), encoding="utf-8").read()
    finally:
        browser.close()
    assert " ".join(cue.content for cue in srt.parse(subtitles)) == " ".join(text.split())  # its words, in order
    assert before == "0:00" and start > 0 and moved != "0:00"


def test_a_reviewer_times_the_item_and_an_injection_stays_text(
    playwright, tmp_path, reviewers, tiny_model_dir, other_tiny_model_dir, tiny_aligner_dir
):
    store = ReviewStore(tmp_path)
    queue_clips(store, 2)
    models = tiny_models(tiny_model_dir, other_tiny_model_dir)  # never loaded: no one transcribes here
    demo = build_demo(models, store=store, access=reviewers, aligner=Aligner(str(tiny_aligner_dir)))
    port = free_port()
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"http://127.0.0.1:{port}")
        page.get_by_role("tab", name="Review").click()
        expect(page.locator("#review-timings-tick")).to_be_hidden()  # nothing for visitors
        page.get_by_label("Reviewer name").fill("ana")
        page.get_by_label("Password").fill("segredo")
        page.locator("#login-button").click()
        expect(page.locator("#review-editor textarea")).to_have_value("O gato dorme.")
        tick = page.locator("#review-timings-tick input")
        tick.check()
        words = page.locator("#review-timings .timed-word")
        expect(words).to_have_count(3)
        expect(page.locator("#review-timings")).to_contain_text("gato")

        page.locator("#review-editor textarea").fill(INJECTION)
        tick.uncheck()
        expect(words).to_have_count(0)
        tick.check()
        timed = [token for token in INJECTION.split() if Qwen3ForceAlignProcessor().clean_token(token)]
        expect(words).to_have_count(len(timed))  # a lone quote joins the word before it
        shown = page.evaluate(
            "Array.from(document.querySelectorAll('#review-timings .timed-word')).map(b => b.firstChild.textContent)"
        )
        pwned = page.evaluate("window.pwned")
        images = page.locator("#review-timings img").count()
        before = page.locator("#review-audio #time").inner_text()
        words.first.click()
        expect(page.locator("#review-audio #time")).not_to_have_text(before)
        page.locator("#review-skip").click()
        expect(page.locator("#review-info textarea")).to_have_value(re.compile(r"^Item 2 "))
        expect(words).to_have_count(3)  # the next item is timed as it comes
        browser.close()
    finally:
        demo.close()
    assert pwned is None and images == 0
    assert " ".join(shown) == " ".join(INJECTION.split())  # every word shown as the reviewer typed it
