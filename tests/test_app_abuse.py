"""The Transcribe side as an anonymous visitor attacks it: raw HTTP to the queue (any event by fn_index, whatever the
API page shows), forged values, replays and floods. Each test makes the attack and sees it fail."""

import json
import logging
import uuid
import zipfile
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import DEMO_MAX_SECONDS, DEMO_SETTINGS, free_port
from gradio.utils import get_upload_folder
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from asr_pt.audio import content_hash, load_audio, to_pcm16
from asr_pt.compare import BASE, FINETUNED, MAX_CONTEXT_CHARS, MAX_REFERENCE_CHARS, compare
from asr_pt.models import ASRModel
from asr_pt.review.store import ReviewStore
from asr_pt.ui import Models, build_demo, launch
from asr_pt.ui.scratch import remove_leftovers, scratch_folder, scratch_folders
from asr_pt.ui.send_to_review import SENDS_PER_SESSION, LastClip, SendRate, queue_for_review
from asr_pt.ui.status import MAX_CONTEXT_TOKENS, demo_model
from asr_pt.ui.uploads import remove_upload

QUEUE_SIZE = 2


@pytest.fixture(scope="module")
def app(tmp_path_factory, tiny_model_dir, other_tiny_model_dir):
    """The page with a review store, a queue of two and the demo's bounds, served in this process."""
    models = Models(*(demo_model(str(folder), DEMO_SETTINGS) for folder in (tiny_model_dir, other_tiny_model_dir)))
    models.load_in_background()
    store = ReviewStore(tmp_path_factory.mktemp("abuse-store"))
    settings = replace(DEMO_SETTINGS, demo_queue_size=QUEUE_SIZE)
    demo = build_demo(models, settings, store=store)
    port = free_port()
    launch(demo, settings, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    url = f"http://127.0.0.1:{port}/"
    Client(url, verbose=False).predict(api_name="/status")  # up
    yield url, models, store
    demo.close()


class Visitor:
    """One browser session, spoken to over raw HTTP the way the page's JavaScript does."""

    def __init__(self, url: str):
        self.url, self.session = url, uuid.uuid4().hex
        config = httpx.get(url + "config").json()
        self.fn_index = {dep["api_name"]: i for i, dep in enumerate(config["dependencies"])}
        self.config = config

    def upload(self, path: Path) -> dict:
        with open(path, "rb") as f:
            response = httpx.post(self.url + "gradio_api/upload", files={"files": (path.name, f)})
        response.raise_for_status()
        return {"path": response.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    def call(self, api_name: str, data: list) -> dict:
        """Joins the queue with `data` and returns the "process_completed" message."""
        body = {"data": data, "fn_index": self.fn_index[api_name], "session_hash": self.session}
        headers = {"Content-Type": "application/json"}  # json.dumps escapes lone surrogates as a browser would
        joined = httpx.post(self.url + "gradio_api/queue/join", content=json.dumps(body), headers=headers)
        if joined.status_code != 200:
            return {"success": False, "http": joined.status_code, "output": {"error": joined.json().get("detail")}}
        event_id = joined.json()["event_id"]
        params = {"session_hash": self.session}
        with httpx.stream("GET", self.url + "gradio_api/queue/data", params=params, timeout=120) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("event_id") == event_id and message["msg"] == "process_completed":
                        return message
        raise AssertionError("the stream ended without a result")

    def transcribe(self, path: Path | dict | None, language="Portuguese", context="", reference="") -> dict:
        audio = self.upload(path) if isinstance(path, Path) else path
        return self.call("transcribe", [audio, language, context, reference])

    def send(self, forged: object = None) -> dict:
        return self.call("send", [forged, 99])


def error_of(message: dict) -> str:
    assert not message["success"], message
    return message["output"]["error"]


def uploads_named(name: str) -> list[Path]:
    return list(Path(get_upload_folder()).rglob(name))


def test_send_to_review_stores_only_what_the_models_wrote_for_this_sessions_clip(app, speech_clips):
    url, models, store = app
    visitor = Visitor(url)
    forged = {"texts": {FINETUNED: "x" * 5000, BASE: "y"}, "reference": "![a](http://evil.example/p.png)"}
    assert "Transcribe a clip first" in error_of(visitor.send(forged))
    assert sum(store.counts().values()) == 0  # nothing was stored for a clip this session never transcribed

    path, sentence = speech_clips[5]
    result = visitor.transcribe(path, reference=sentence)["output"]["data"][0]
    assert "Sent to review as item" in visitor.send(forged)["output"]["data"][0]
    replay = visitor.send(forged)["output"]["data"][0]
    assert "in the review queue already" in replay
    [item] = [store.get(1)]
    runs = result["runs"]
    assert sum(store.counts().values()) == 1
    assert item.audio_hash == content_hash(load_audio(path))
    assert (item.hypothesis_finetuned, item.hypothesis_base) == (
        runs[FINETUNED]["transcript"]["text"],
        runs[BASE]["transcript"]["text"],
    )
    assert (item.model_finetuned, item.model_base) == (models[FINETUNED].model_id, models[BASE].model_id)
    assert item.reference == sentence

    stranger = Visitor(url)  # another session cannot send this session's clip, nor one of its own it never made
    assert "Transcribe a clip first" in error_of(stranger.send(forged))


def fake_clip(seed: int, seconds: float = 1.0) -> LastClip:
    """A session's last clip as the server keeps it (here made up: these tests are about what happens next)."""
    samples = (np.random.default_rng(seed).standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32)
    return LastClip(
        pcm=to_pcm16(np.clip(samples, -1, 1)),
        reference="",
        texts={FINETUNED: "o gato", BASE: "o rato"},
        model_ids={FINETUNED: "ft", BASE: "base"},
    )


def test_sends_are_limited_per_session_per_visitor_and_across_visitors(tmp_path):
    import gradio as gr

    store = ReviewStore(tmp_path)
    rate = SendRate(limit=8, window=3600)  # a visitor's share: 2
    with pytest.raises(gr.Error, match=f"has sent {SENDS_PER_SESSION} clips"):
        queue_for_review(store, fake_clip(0), SENDS_PER_SESSION, rate, 10.0, "10.0.0.1")
    with pytest.raises(gr.Error, match="too long to review: 12.0 s, the limit is 10 s"):
        queue_for_review(store, fake_clip(1, seconds=12), 0, rate, 10.0, "10.0.0.1")
    assert queue_for_review(store, fake_clip(2), 0, rate, 10.0, "10.0.0.1")[1] == 1
    assert queue_for_review(store, fake_clip(3), 0, rate, 10.0, "10.0.0.1")[1] == 1  # a new session: count 0
    with pytest.raises(gr.Error, match="sent to review lately, from here or in all: try again in 60 min"):
        queue_for_review(store, fake_clip(4), 0, rate, 10.0, "10.0.0.1")  # this visitor's share is used
    message, sent = queue_for_review(store, fake_clip(2), 0, rate, 10.0, "10.0.0.1")  # queued already: free
    assert sent == 0 and "in the review queue already" in message
    for n in range(3):  # the rest of the page's sends, by three other visitors
        assert queue_for_review(store, fake_clip(10 + 2 * n), 0, rate, 10.0, f"10.0.1.{n}")[1] == 1
        assert queue_for_review(store, fake_clip(11 + 2 * n), 0, rate, 10.0, f"10.0.1.{n}")[1] == 1
    with pytest.raises(gr.Error, match="try again in 60 min"):
        queue_for_review(store, fake_clip(20), 0, rate, 10.0, "10.0.2.1")  # the page's hourly limit
    unloaded = LastClip(**{**vars(fake_clip(5)), "texts": {FINETUNED: "o gato", BASE: None}})
    with pytest.raises(gr.Error, match="Both models must have transcribed"):
        queue_for_review(store, unloaded, 0, SendRate(), 10.0, "10.0.0.1")
    assert store.counts()["pending"] == 8


def test_a_visitors_share_of_sends_comes_back_as_their_sends_age():
    now = [0.0]
    rate = SendRate(limit=4, window=100, clock=lambda: now[0])
    assert rate.visitor_limit == 1 and rate.take("a") == 0 and rate.take("a") == pytest.approx(100)
    now[0] = 30
    assert rate.take("b") == 0 and rate.take("b") == pytest.approx(100)  # b's share is b's own
    now[0] = 100
    assert rate.take("a") == 0 and rate.take("b") == pytest.approx(30)  # a's send aged out, b's not yet


def test_context_and_reference_are_bounded_and_must_be_text(app, speech_clips):
    url, _, _ = app
    visitor = Visitor(url)
    path = speech_clips[0][0]
    attempts = {
        "the context is too long: 1,001 characters, the limit is 1,000": {"context": "a" * (MAX_CONTEXT_CHARS + 1)},
        f"the context is too long: 1,000 tokens, the limit is {MAX_CONTEXT_TOKENS}": {"context": "😀" * 250},
        "the reference is too long: 5,001 characters, the limit is 5,000": {
            "reference": "a" * (MAX_REFERENCE_CHARS + 1)
        },
        "the context holds a character that is not valid text (at position 1)": {"context": "a\ud800"},
        "the reference holds a character that is not valid text (at position 0)": {"reference": "\udfff"},
    }
    for message, texts in attempts.items():
        assert message in error_of(visitor.transcribe(path, **texts))
    assert "is not in the list of choices" in error_of(visitor.transcribe(path, language={"a": 1}))
    result = visitor.transcribe(path, context=12345, reference=["O", "gato"])  # Textbox makes any value a string
    assert result["success"] and result["output"]["data"][0]["reference"] == "['O', 'gato']"


def test_one_request_cannot_run_on_a_model_for_long(tiny_model_dir, speech_clips):
    audio = load_audio(speech_clips[0][0])  # 1.6 s
    bounded = ASRModel(str(tiny_model_dir), max_new_tokens=512, tokens_per_second=2)
    assert bounded.new_token_limit(len(audio) / 16000) == 16 + 4
    capped = ASRModel(str(tiny_model_dir), max_new_tokens=20)
    transcript = bounded.transcribe(audio)
    assert transcript.text == capped.transcribe(audio).text and transcript.truncated and not transcript.timed_out

    hurried = ASRModel(str(tiny_model_dir), max_new_tokens=512, time_limit=1e-6)
    result = compare(speech_clips[0][0], hurried, bounded)
    assert result.runs[FINETUNED].transcript.timed_out
    assert result.runs[FINETUNED].warnings[0] == "stopped at the time limit of 1e-06 s: the text is probably incomplete"
    assert result.runs[BASE].warnings[0] == "output cut at 20 new tokens: the text is probably incomplete"


def test_the_queue_is_capped_and_status_says_busy_while_requests_wait(app, speech_clips):
    url, models, _ = app
    client = Client(url, verbose=False)
    clip = handle_file(str(speech_clips[0][0]))
    lock = models[FINETUNED]._generate_lock  # held here: the model is busy for as long as the test says
    lock.acquire()
    try:
        jobs = [client.submit(clip, api_name="/transcribe") for _ in range(2)]  # both run and wait on the model
        wait_for(lambda: status_of(url)[FINETUNED]["waiting"] == 2)
        jobs += [client.submit(clip, api_name="/transcribe") for _ in range(QUEUE_SIZE)]
        status = wait_for(lambda: status_of(url), lambda s: s["queued"] == QUEUE_SIZE)  # answers with the queue full
        assert status[FINETUNED]["state"] == "busy" and status[BASE]["state"] == "ready"
        overflow = Visitor(url).transcribe(speech_clips[0][0])
        assert overflow.get("http") == 503 and "Queue is full" in overflow["output"]["error"]
    finally:
        lock.release()
    assert all(job.result(timeout=120)["runs"][FINETUNED]["transcript"] for job in jobs)
    status = client.predict(api_name="/status")
    assert (status[FINETUNED]["state"], status[FINETUNED]["waiting"], status["queued"]) == ("ready", 0, 0)


def status_of(url: str) -> dict:
    """`/status` over plain HTTP, outside the queue: it answers while the queue is full."""
    response = httpx.post(url + "gradio_api/run/status", json={"data": []})
    response.raise_for_status()
    return response.json()["data"][0]


def wait_for(probe, accept=bool, timeout: float = 60.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if accept(value):
            return value
        time.sleep(0.2)
    raise TimeoutError(f"not reached in {timeout} s: last {value!r}")


def test_every_upload_is_removed_once_read_and_the_same_upload_can_be_transcribed_again(app, speech_clips, tmp_path):
    import subprocess

    url, _, _ = app
    visitor = Visitor(url)
    tag = uuid.uuid4().hex[:8]
    good = tmp_path / f"good-{tag}.wav"
    good.write_bytes(speech_clips[2][0].read_bytes())
    not_audio = tmp_path / f"notes-{tag}.wav"
    not_audio.write_text("this is not audio")
    too_long = tmp_path / f"long-{tag}.wav"
    subprocess.run(["sox", str(speech_clips[0][0]), str(too_long), "repeat", "8"], check=True)

    uploaded = visitor.upload(good)
    assert uploads_named(good.name)
    first = visitor.transcribe(uploaded)
    assert first["success"] and not uploads_named(good.name)
    again = visitor.transcribe(uploaded, language="auto")  # the same upload, gone from disk: the session's clip
    assert (
        again["success"] and again["output"]["data"][0]["audio_seconds"] == first["output"]["data"][0]["audio_seconds"]
    )
    assert "not readable audio" in error_of(visitor.transcribe(not_audio))
    assert "the audio is too long" in error_of(visitor.transcribe(too_long))
    assert "is too long" in error_of(visitor.transcribe(good, context="a" * (MAX_CONTEXT_CHARS + 1)))
    for path in (good, not_audio, too_long):
        assert not uploads_named(path.name)
    assert Visitor(url).transcribe(uploaded)["success"]  # the same bytes uploaded for another session, read once

    example = visitor.call("load_example", [0])["output"]["data"][0]["value"]  # a click on the first example
    assert visitor.transcribe(example)["success"] and not Path(example["path"]).exists()
    other = Visitor(url)  # Gradio copies the example into its folder again on each click
    assert other.transcribe(other.call("load_example", [0])["output"]["data"][0]["value"])["success"]


def test_only_files_in_gradios_upload_folder_are_ever_removed(tmp_path):
    outside = tmp_path / "clip.wav"
    outside.write_bytes(b"RIFF")
    remove_upload(str(outside))
    upload = Path(get_upload_folder()) / uuid.uuid4().hex / "clip.wav"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"RIFF")
    remove_upload(str(upload), kept={str(upload)})
    assert outside.is_file() and upload.is_file()
    remove_upload(str(upload))
    assert not upload.exists() and not upload.parent.exists()


def test_a_refused_request_is_one_log_line_without_a_traceback(app, tmp_path, caplog, capfd):
    url, _, _ = app
    not_audio = tmp_path / "refused.wav"
    not_audio.write_text("this is not audio")
    with caplog.at_level(logging.INFO, logger="asr_pt.app"):
        with pytest.raises(AppError, match="refused.wav is not readable audio"):
            Client(url, verbose=False).predict(handle_file(str(not_audio)), api_name="/transcribe")
    refusals = [record.getMessage() for record in caplog.records if "refused" in record.getMessage()]
    assert len(refusals) == 1 and "refused.wav is not readable audio" in refusals[0]
    assert "Traceback" not in capfd.readouterr().err


def test_the_api_has_defaults_and_only_its_endpoints_and_the_page_names_its_models(app, speech_clips):
    url, models, _ = app
    client = Client(url, verbose=False)
    result = client.predict(handle_file(str(speech_clips[0][0])), api_name="/transcribe")  # language, context, ...
    assert result["language"] == "Portuguese" and result["reference"] == ""
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {"/transcribe", "/transcribe_many", "/word_timings", "/status"}
    assert not api["unnamed_endpoints"]
    config = httpx.get(url + "config").json()
    assert not [dep["api_name"] for dep in config["dependencies"] if "lambda" in str(dep["api_name"])]
    texts = [component["props"].get("value") or "" for component in config["components"]]
    intro = next(text for text in texts if isinstance(text, str) and text.startswith("# "))
    assert models[FINETUNED].model_id in intro and models[BASE].model_id in intro and "yuriyvnv" not in intro
    status = next(c for c in config["components"] if c["props"].get("elem_id") == "status")["props"]["value"]
    assert status.count(": ready") == 2 and "loading" not in status  # a new page does not flash "loading"
    skipping_the_queue = httpx.post(
        url + "gradio_api/run/predict",
        json={"data": [None, "Portuguese", "", "", None], "fn_index": Visitor(url).fn_index["transcribe"]},
    )
    assert skipping_the_queue.status_code == 404 and "join the queue" in skipping_the_queue.text


def test_forged_audio_paths_read_and_delete_nothing_outside_the_upload_folder(app, tmp_path):
    url, _, store = app
    visitor = Visitor(url)
    audio_hash, _ = store.put_audio((np.random.default_rng(7).standard_normal(16000) * 0.1).astype(np.float32))
    stored = store.audio_path(audio_hash)
    outside = tmp_path / "private.wav"
    outside.write_bytes(stored.read_bytes())
    traversal = str(Path(get_upload_folder()) / ".." / ".." / outside.relative_to("/"))
    for path in (str(stored), str(outside), traversal):
        forged = {"path": path, "meta": {"_type": "gradio.FileData"}}
        assert not visitor.transcribe(forged)["success"]  # Gradio: "not uploaded by a user" (in the log only)
    assert stored.is_file() and outside.is_file()
    assert "no audio: record a clip or upload a file first" in error_of(visitor.transcribe(None))
    oversized = tmp_path / "big.wav"
    oversized.write_bytes(b"\0" * int(DEMO_MAX_SECONDS * 48000 * 2 * 4 + 1))
    with open(oversized, "rb") as f:
        refused = httpx.post(url + "gradio_api/upload", files={"files": (oversized.name, f)})
    assert refused.status_code == 413 and not uploads_named(oversized.name)


@pytest.fixture(scope="module")
def app_with_few_sends(app, tmp_path_factory):
    """The page with 4 sends to review an hour (one visitor's share is 1) and batches of at most 4 s of audio."""
    _, models, _ = app
    store = ReviewStore(tmp_path_factory.mktemp("few-sends-store"))
    settings = replace(DEMO_SETTINGS, review_sends_per_hour=4, batch_max_seconds=4.0)
    demo = build_demo(models, settings, store=store)
    port = free_port()
    launch(demo, settings, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    yield f"http://127.0.0.1:{port}/", store
    demo.close()


def test_one_visitor_cannot_use_the_pages_sends_and_duplicates_cost_nothing(app_with_few_sends, speech_clips):
    url, store = app_with_few_sends

    def batch_then_send(paths: list[Path]) -> dict:
        visitor = Visitor(url)
        files = [visitor.upload(path) for path in paths]
        assert visitor.call("transcribe_many", [files, "Portuguese", None])["success"]
        sent = visitor.call("send_all", [None])
        assert sent["success"], sent
        return visitor, sent["output"]["data"][0]

    clips = [path for path, _ in speech_clips[:2]]
    _, message = batch_then_send(clips)  # two new clips, one visitor's share is one
    assert (
        message == "Sent 1 new clips to review. Thank you! 1 were not sent (a limit on sends was reached; try later)."
    )
    visitor, message = batch_then_send(clips[:1])  # the same clip again: a notice, and no quota used
    assert message == "Sent 0 new clips to review. Thank you! 1 were in the review queue already."
    again = visitor.call("send_all", [None])
    assert again["success"] and again["output"]["data"][0] == "This batch is in review already. Thank you!"
    assert sum(store.counts().values()) == 1


def test_a_file_listed_many_times_is_read_and_counted_once(app_with_few_sends, speech_clips):
    url, _ = app_with_few_sends
    visitor = Visitor(url)
    clip = visitor.upload(speech_clips[0][0])  # 1.9 s: four listings would be 7.6 s of a 4 s batch
    rows = visitor.call("transcribe_many", [[clip] * 4, "Portuguese", None])["output"]["data"][0]
    assert [row["error"] for row in rows] == [None] * 4 and len({row["finetuned"] for row in rows}) == 1


def test_files_sent_and_zips_unpacked_are_deleted_once_the_batch_is_over(app, speech_clips, tmp_path):
    url, _, _ = app
    archive = tmp_path / "clips.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(speech_clips[0][0], "one.wav")
        z.writestr("notes.bin", b"\0" * 100_000)  # not audio: unpacked all the same, and deleted all the same
    visitor = Visitor(url)
    sent = [visitor.upload(archive), visitor.upload(speech_clips[1][0])]
    before = set(scratch_folders())
    message = visitor.call("transcribe_many", [sent, "Portuguese", None])
    assert message["success"] and [row["file"] for row in message["output"]["data"][0]] == [
        "one.wav",
        "notes.bin",
        speech_clips[1][0].name,
    ]
    assert not uploads_named(archive.name) and not uploads_named(speech_clips[1][0].name)
    (folder,) = set(scratch_folders()) - before  # the session's: only the clips kept for review, as 16 kHz WAV
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.wav")) == [
        "clips/0000.wav",
        "clips/0002.wav",
    ]
    assert not (folder / "batch").exists()
    refused = [visitor.upload(archive)] * 60  # too many files: refused, and what was sent still goes
    assert not visitor.call("transcribe_many", [refused, "Portuguese", None])["success"]
    assert not uploads_named(archive.name)


def test_folders_a_previous_run_left_are_removed_at_start(tmp_path, monkeypatch):
    import subprocess
    import sys
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, alive, other = (tmp_path / f"asr-pt-scratch-{gone.stdout.strip()}-x", scratch_folder(), tmp_path / "x")
    for folder in (dead, other):
        folder.mkdir()
        (folder / "clip.wav").write_bytes(b"RIFF")
    assert remove_leftovers() == 1 and not dead.exists() and alive.is_dir() and other.is_dir()
