"""The Live microphone and Many files tabs as visitors meet them: in Chromium (the fake microphone plays a clip),
through the API, and as an anonymous caller would attack them over raw HTTP, event by event."""

import json
import re
import time
import zipfile

import numpy as np
import pytest
import soundfile as sf
import test_app_abuse
import test_app_browser
from gradio_client import Client, handle_file
from playwright.sync_api import expect
from test_app_abuse import Visitor, error_of
from test_app_browser import TIMEOUT_MS, open_page

from asr_pt.ui.live import LIVE_STREAMS

# Fixtures of those modules, reused: the page with a review store, served; Playwright.
page_with_store = test_app_abuse.app
browser_driver = test_app_browser.playwright


def start_streaming(page, tries: int = 3) -> None:
    """Record until the server hears pieces. Gradio 6.17's streaming microphone sometimes never starts streaming
    when Record is pressed on a busy server (seen when the page's first requests are still pending); a visitor
    presses Stop and Record again, and so does this."""
    microphone = page.locator("#live-audio")
    for _ in range(tries - 1):
        microphone.get_by_role("button", name="Record").click()
        try:
            expect(page.locator("#live-info")).to_contain_text("Heard", timeout=15_000)
            return
        except AssertionError:
            microphone.get_by_role("button", name="Stop").first.click()
            page.wait_for_timeout(1000)
    microphone.get_by_role("button", name="Record").click()


def test_live_microphone_grows_a_transcript_then_compares_and_leaving_frees_it(browser_driver, demo_url, speech_clips):
    fake_microphone = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={speech_clips[7][0]}",
    ]
    before = set(LIVE_STREAMS.sessions())
    browser, page = open_page(browser_driver, demo_url, fake_microphone, permissions=["microphone"])
    try:
        expect(page.locator("#status")).not_to_contain_text("loading", timeout=TIMEOUT_MS)
        page.get_by_role("tab", name="Live microphone").click()
        start_streaming(page)
        expect(page.locator("#live-text textarea")).not_to_have_value("", timeout=TIMEOUT_MS)  # after the first 2 s
        expect(page.locator("#live-info")).to_contain_text(re.compile(r"Heard [3-9]\.\d s"), timeout=TIMEOUT_MS)
        streaming = set(LIVE_STREAMS.sessions()) - before
        page.locator("#live-audio").get_by_role("button", name="Stop").first.click()
        expect(page.locator("#live-base-info")).to_contain_text("real-time factor", timeout=TIMEOUT_MS)
        texts = [page.locator(f"#live-{side}-text textarea").input_value() for side in ("finetuned", "base")]
        finished = page.locator("#live-info").inner_text()
        scores = page.locator("#live-scores").inner_text()
    finally:
        browser.close()
    assert len(streaming) == 1 and all(texts) and "the recording stopped" in finished
    assert "Zero-shot base vs fine-tuned" in scores
    deadline = time.time() + 30
    while streaming & set(LIVE_STREAMS.sessions()) and time.time() < deadline:  # the page's heartbeat notices
        time.sleep(0.5)
    assert not streaming & set(LIVE_STREAMS.sessions())


def test_many_files_in_the_browser_table_and_downloads(browser_driver, demo_url, speech_clips, tmp_path):
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path, _ in speech_clips[1:3]:
            z.write(path, f"folder/{path.name}")
    browser, page = open_page(browser_driver, demo_url)
    try:
        page.get_by_role("tab", name="Many files").click()
        page.locator("#batch-files input[type=file]").set_input_files([str(speech_clips[0][0]), str(archive)])
        expect(page.locator("#batch-files").get_by_role("cell", name="two.zip")).to_be_visible()
        page.get_by_role("button", name="Transcribe all with both models").click()
        expect(page.locator("#batch-summary")).to_contain_text("3 files transcribed", timeout=TIMEOUT_MS)
        table = page.locator("#batch-table").inner_text()
        with page.expect_download() as download:
            page.locator("#batch-csv a").first.click()
        csv_text = open(download.value.path(), encoding="utf-8").read()
    finally:
        browser.close()
    names = [path.name for path, _ in speech_clips[:3]]
    assert all(name in table for name in names) and all(name in csv_text for name in names)


def test_transcribe_many_through_the_api(demo_url, speech_clips, tmp_path):
    (tmp_path / "notes.txt").write_text("not audio")
    client = Client(demo_url, verbose=False)
    rows = client.predict(
        [handle_file(str(speech_clips[0][0])), handle_file(str(tmp_path / "notes.txt"))],
        "Portuguese",
        api_name="/transcribe_many",
    )
    assert rows[0]["file"] == speech_clips[0][0].name and rows[0]["finetuned"] and rows[0]["base"]
    assert rows[0]["wer"] is not None and rows[0]["error"] is None
    assert rows[1]["file"] == "notes.txt" and "not readable audio" in rows[1]["error"] and rows[1]["wer"] is None


def test_attack_a_zip_of_too_many_files_is_refused(demo_url, tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(60):
            z.writestr(f"{i}.wav", b"x")
    client = Client(demo_url, verbose=False)
    with pytest.raises(Exception, match="too many files"):
        client.predict([handle_file(str(archive))], "Portuguese", api_name="/transcribe_many")


def test_attack_forged_file_paths_are_not_read(page_with_store):
    url, _, _ = page_with_store
    forged = [{"path": "/etc/passwd", "orig_name": "passwd.wav", "meta": {"_type": "gradio.FileData"}}]
    message = Visitor(url).call("transcribe_many", [forged, "Portuguese", None])
    assert message["success"] is False and "root:" not in json.dumps(message)  # refused, and nothing of it read


def test_attack_oversized_and_forged_microphone_pieces(page_with_store, tmp_path):
    url, _, _ = page_with_store
    long_piece, odd_rate = tmp_path / "long.wav", tmp_path / "odd.wav"
    sf.write(long_piece, np.zeros(8 * 48000, dtype=np.int16), 48000)  # 8 s sent as one half-second piece
    sf.write(odd_rate, np.zeros(100, dtype=np.int16), 1000)
    visitors = [Visitor(url), Visitor(url)]
    messages = [
        v.call("on_piece", [v.upload(path), None, "Portuguese"])
        for v, path in zip(visitors, (long_piece, odd_rate), strict=True)
    ]
    assert "at most 5 s" in error_of(messages[0])
    assert "unsupported sample rate 1000 Hz" in error_of(messages[1])
    assert not {v.session for v in visitors} & set(LIVE_STREAMS.sessions())  # a refused piece leaves no stream


def test_attack_send_all_to_review_ignores_values_sent_by_the_caller(page_with_store):
    url, _, store = page_with_store
    before = sum(store.counts().values())
    forged_session = {"rows": [{"file": "x", "finetuned": "forged", "base": "forged"}], "uploads": ["/etc/passwd"]}
    message = Visitor(url).call("send_all", [forged_session])
    assert "Transcribe files first" in error_of(message)
    assert sum(store.counts().values()) == before
