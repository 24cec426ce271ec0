"""The Live microphone and Many files tabs as visitors meet them: in Chromium (the fake microphone plays a clip),
through the API, and as an anonymous caller would attack them over raw HTTP, event by event."""

import json
import re
import time
import zipfile

import httpx
import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client, handle_file
from playwright.sync_api import expect

from asr_pt.models import ASRModel
from asr_pt.review.store import ReviewStore
from asr_pt.ui import Models, build_demo, launch
from asr_pt.ui.live import LIVE_STREAMS
from tests.conftest import DEMO_MAX_NEW_TOKENS, DEMO_MAX_SECONDS, free_port
from tests.test_app_browser import TIMEOUT_MS, open_page


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def store_demo(tiny_model_dir, other_tiny_model_dir, tmp_path_factory):
    """The page with a review store, so "send all to review" is there to attack."""
    store = ReviewStore(tmp_path_factory.mktemp("store"))
    models = Models(
        *(ASRModel(str(m), max_new_tokens=DEMO_MAX_NEW_TOKENS) for m in (tiny_model_dir, other_tiny_model_dir))
    )
    models.load()
    demo = build_demo(models, max_seconds=DEMO_MAX_SECONDS, store=store)
    port = free_port()
    launch(
        demo,
        max_seconds=DEMO_MAX_SECONDS,
        store=store,
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
    )
    yield f"http://127.0.0.1:{port}/", store
    demo.close()


def fn_index(url: str, elem_id: str, trigger: str) -> int:
    """The event a component with `elem_id` fires on `trigger`, as a raw caller finds it in /config."""
    config = httpx.get(url + "config").json()
    component = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)
    return next(d["id"] for d in config["dependencies"] if [component, trigger] in d["targets"])


def upload(url: str, path) -> dict:
    with open(path, "rb") as f:
        paths = httpx.post(url + "gradio_api/upload", files={"files": (path.name, f)}).json()
    return {"path": paths[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def raw_call(url: str, index: int, data: list, session: str = "attacker") -> dict:
    """queue/join an event by its index with any data, as no browser would, and return its last message."""
    body = {"data": data, "fn_index": index, "session_hash": session, "event_data": None, "trigger_id": None}
    joined = httpx.post(url + "gradio_api/queue/join", json=body)
    assert joined.status_code == 200, joined.text
    with httpx.stream("GET", url + "gradio_api/queue/data", params={"session_hash": session}, timeout=60) as events:
        for line in events.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    return message
    raise AssertionError("the event never completed")


def test_live_microphone_grows_a_transcript_then_compares_and_leaving_frees_it(playwright, demo_url, speech_clips):
    fake_microphone = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={speech_clips[7][0]}",
    ]
    before = set(LIVE_STREAMS.sessions())
    browser, page = open_page(playwright, demo_url, fake_microphone, permissions=["microphone"])
    try:
        # Gradio 6.17's streaming microphone records nothing when Record is pressed while the page's first requests
        # are pending (a busy server): wait for them.
        expect(page.locator("#status")).not_to_contain_text("loading", timeout=TIMEOUT_MS)
        page.wait_for_timeout(2000)
        page.get_by_role("tab", name="Live microphone").click()
        page.locator("#live-audio").get_by_role("button", name="Record").click()
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


def test_many_files_in_the_browser_table_and_downloads(playwright, demo_url, speech_clips, tmp_path):
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path, _ in speech_clips[1:3]:
            z.write(path, f"folder/{path.name}")
    browser, page = open_page(playwright, demo_url)
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


def test_attack_forged_file_paths_are_not_read(demo_url):
    config = httpx.get(demo_url + "config").json()
    index = next(d["id"] for d in config["dependencies"] if d["api_name"] == "transcribe_many")
    forged = [{"path": "/etc/passwd", "orig_name": "passwd.wav", "meta": {"_type": "gradio.FileData"}}]
    message = raw_call(demo_url, index, [forged, "Portuguese", None])
    assert message["success"] is False and "passwd" not in json.dumps(message.get("output", {})).replace(
        "passwd.wav", ""
    )


def test_attack_oversized_and_forged_microphone_pieces(demo_url, tmp_path):
    index = fn_index(demo_url, "live-audio", "stream")
    long_piece = tmp_path / "long.wav"
    sf.write(long_piece, np.zeros(8 * 48000, dtype=np.int16), 48000)  # 8 s sent as one half-second piece
    message = raw_call(demo_url, index, [upload(demo_url, long_piece), None, "Portuguese"], session="piece-attacker")
    assert message["success"] is False and "at most 5 s" in message["output"]["error"]
    odd_rate = tmp_path / "odd.wav"
    sf.write(odd_rate, np.zeros(100, dtype=np.int16), 1000)
    message = raw_call(demo_url, index, [upload(demo_url, odd_rate), None, "Portuguese"], session="rate-attacker")
    assert message["success"] is False and "unsupported sample rate 1000 Hz" in message["output"]["error"]
    assert not {"piece-attacker", "rate-attacker"} & set(LIVE_STREAMS.sessions())


def test_attack_send_all_to_review_ignores_values_sent_by_the_caller(store_demo, speech_clips):
    url, store = store_demo
    index = fn_index(url, "batch-send-to-review", "click")
    forged_session = {"rows": [{"file": "x", "finetuned": "forged", "base": "forged"}], "uploads": ["/etc/passwd"]}
    message = raw_call(url, index, [forged_session], session="review-attacker")
    assert message["success"] is False and "Transcribe files first" in message["output"]["error"]
    assert sum(store.counts().values()) == 0
