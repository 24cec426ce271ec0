"""The Live microphone and Many files tabs as visitors meet them: in Chromium (the fake microphone plays a clip),
through the API, and as an anonymous caller would attack them over raw HTTP, event by event."""

import json
import queue
import re
import threading
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
import test_app_abuse
import test_app_browser
from gradio_client import Client, handle_file
from playwright.sync_api import expect
from test_app_abuse import QUEUE_SIZE, Visitor, error_of
from test_app_browser import TIMEOUT_MS, open_page

from asr_pt.settings import DEFAULTS
from asr_pt.ui.live import IDLE_SECONDS, LIVE_STREAMS

# Fixtures of those modules, reused: the page with a review store, served; Playwright.
page_with_store = test_app_abuse.app
browser_driver = test_app_browser.playwright


def test_live_microphone_grows_a_transcript_then_compares_and_leaving_frees_it(browser_driver, demo_url, speech_clips):
    fake_microphone = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={speech_clips[7][0]}",
    ]
    before = set(LIVE_STREAMS.sessions())
    browser, page = open_page(browser_driver, demo_url, fake_microphone, permissions=["microphone"])

    held, released = [], False

    def hold_module(route):  # Gradio's recorder modules arrive late, as from a busy server
        if released:
            route.continue_()
        else:
            held.append(route)

    try:
        expect(page.locator("#status")).not_to_contain_text("loading", timeout=TIMEOUT_MS)
        page.route(re.compile(r"/assets/module-[^/]*\.js"), hold_module)
        page.reload()  # the page again, its recorder late this time
        page.get_by_role("tab", name="Live microphone").click()
        page.locator("#live-audio").get_by_role("button", name="Record").click()  # once, before the recorder is there
        page.wait_for_timeout(1000)
        assert held  # the recorder was not there when Record was pressed
        released = True
        for route in held:
            route.continue_()
        info, text = page.locator("#live-info"), page.locator("#live-text textarea")
        expect(info).to_contain_text(re.compile(r"Heard [2-3]\.\d s"), timeout=TIMEOUT_MS)
        expect(text).not_to_have_value("", timeout=TIMEOUT_MS)  # after the first 2 s
        early = text.input_value()
        expect(info).to_contain_text(re.compile(r"Heard [6-9]\.\d s"), timeout=TIMEOUT_MS)  # two updates later
        later = text.input_value()
        streaming = set(LIVE_STREAMS.sessions()) - before
        page.locator("#live-audio").get_by_role("button", name="Stop").first.click()
        expect(page.locator("#live-base-info")).to_contain_text("real-time factor", timeout=TIMEOUT_MS)
        texts = [page.locator(f"#live-{side}-text textarea").input_value() for side in ("finetuned", "base")]
        finished = page.locator("#live-info").inner_text()
        scores = page.locator("#live-scores").inner_text()
    finally:
        browser.close()
    assert early and later and later != early  # the text was updated as more was heard
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


class Streamer(Visitor):
    """A visitor that streams the microphone as the page's JavaScript does: the first piece joins the queue, the next
    ones are posted to `/gradio_api/stream/{event_id}`, Stop posts its `/close`; the session's messages are read in
    the background."""

    def __init__(self, url: str):
        super().__init__(url)
        self.messages: queue.Queue[dict] = queue.Queue()
        self._reader: threading.Thread | None = None  # Gradio serves a session's messages once it has an event

    def _read(self) -> None:
        params = {"session_hash": self.session}
        with httpx.stream("GET", self.url + "gradio_api/queue/data", params=params, timeout=120) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    self.messages.put(json.loads(line[5:]))

    def body(self, piece: dict) -> dict:
        fn_index = self.fn_index["on_piece"]
        return {"data": [piece, None, "Portuguese"], "fn_index": fn_index, "session_hash": self.session}

    def open(self, piece: dict) -> str:
        joined = httpx.post(self.url + "gradio_api/queue/join", json=self.body(piece))
        joined.raise_for_status()
        if self._reader is None:
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()
        return joined.json()["event_id"]

    def send(self, event_id: str, piece: dict) -> None:
        httpx.post(self.url + f"gradio_api/stream/{event_id}", json=self.body(piece)).raise_for_status()

    def close(self, event_id: str) -> None:
        httpx.post(self.url + f"gradio_api/stream/{event_id}/close").raise_for_status()

    def next_output(self, event_id: str, timeout: float = 60) -> dict:
        """The event's next update ("process_streaming") or its end ("process_completed")."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.messages.get(timeout=max(0.1, deadline - time.monotonic()))
            if message.get("event_id") == event_id and message["msg"] in ("process_streaming", "process_completed"):
                return message


@pytest.fixture(scope="module")
def pieces(tmp_path_factory, speech_clips) -> list[Path]:
    """A clip cut into the half-second 48 kHz pieces a browser sends."""
    import librosa

    folder = tmp_path_factory.mktemp("pieces")
    samples, _ = librosa.load(speech_clips[7][0], sr=48000)
    paths = []
    for i in range(0, len(samples) - 24000, 24000):
        paths.append(folder / f"piece{len(paths):02d}.wav")
        sf.write(paths[-1], samples[i : i + 24000], 48000, subtype="PCM_16")
    return paths


def live_info(message: dict) -> str:
    assert message["success"], message
    return message["output"]["data"][1]


def test_attack_idle_streams_neither_fill_the_queue_nor_keep_others_from_streaming(
    page_with_store, pieces, speech_clips
):
    url, _, _ = page_with_store
    idle = [Streamer(url) for _ in range(21)]  # each sends one piece and goes quiet
    opened = [(visitor, visitor.open(visitor.upload(pieces[0]))) for visitor in idle]
    firsts = [visitor.next_output(event_id) for visitor, event_id in opened]
    admitted = [(v, e) for (v, e), first in zip(opened, firsts, strict=True) if first["msg"] == "process_streaming"]
    refused = [first for first in firsts if first["msg"] == "process_completed"]
    assert len(admitted) == DEFAULTS.stream_limit and len(refused) == 21 - DEFAULTS.stream_limit > QUEUE_SIZE
    assert all("live streams are open" in error_of(message) for message in refused)

    started = time.monotonic()
    answer = Visitor(url).transcribe(speech_clips[0][0])  # the queue holds 2: before, 20 waiting streams filled it
    answered = time.monotonic() - started
    assert answer["success"], answer
    assert answered < IDLE_SECONDS  # the idle streams are still open: it did not wait for them to go

    ends = [visitor.next_output(event_id, timeout=IDLE_SECONDS + 10) for visitor, event_id in admitted]
    assert time.monotonic() - started < IDLE_SECONDS + 10  # not Gradio's wait of the stream's time limit (40 s)
    assert all(end["msg"] == "process_completed" and "no audio for 5 s" in live_info(end) for end in ends)
    newcomer = Streamer(url)
    event_id = newcomer.open(newcomer.upload(pieces[1]))
    assert newcomer.next_output(event_id)["msg"] == "process_streaming"  # the idle streams freed their places
    newcomer.close(event_id)


def test_two_visitors_stream_at_once_and_a_visitor_one_stream_at_a_time(page_with_store, pieces):
    url, _, _ = page_with_store
    ana, bruno = Streamer(url), Streamer(url)
    streams = [(ana, ana.open(ana.upload(pieces[0]))), (bruno, bruno.open(bruno.upload(pieces[1])))]
    for i in range(1, 5):  # their pieces interleave: neither waits for the other to stop
        for visitor, event_id in streams:
            assert visitor.next_output(event_id)["msg"] == "process_streaming"
            visitor.send(event_id, visitor.upload(pieces[i]))
    second = ana.open(ana.upload(pieces[5]))  # a page never opens two streams; a raw caller may try
    assert "one live stream per visitor" in error_of(ana.next_output(second))
    for visitor, event_id in streams:
        assert "Heard **2.5 s**" in live_info(visitor.next_output(event_id))  # 5 pieces of 0.5 s, each heard once
        visitor.close(event_id)


def test_closing_a_stream_does_not_hear_its_last_piece_again(page_with_store, pieces):
    url, _, _ = page_with_store
    visitor = Streamer(url)
    event_id = visitor.open(visitor.upload(pieces[0]))
    for piece in pieces[1:3]:
        assert visitor.next_output(event_id)["msg"] == "process_streaming"
        visitor.send(event_id, visitor.upload(piece))
    assert "Heard **1.5 s**" in live_info(visitor.next_output(event_id))
    visitor.close(event_id)  # what Stop does: Gradio calls the event once more, with the last piece it had
    end = visitor.next_output(event_id)
    assert end["msg"] == "process_completed" and "Heard **1.5 s**" in live_info(end)
