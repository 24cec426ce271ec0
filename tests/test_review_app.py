"""The Review and Data tabs: closed to visitors, and a reviewer's keyboard-only correction in Chromium."""

import re
import socket

import gradio as gr
import numpy as np
import pytest

from asr_pt.audio import content_hash, load_audio
from asr_pt.models import ASRModel
from asr_pt.review.logins import LoginThrottle, ReviewerSessions
from asr_pt.review.reviewers import hash_password
from asr_pt.review.store import ReviewStore
from asr_pt.ui import Models, build_demo, launch
from asr_pt.ui.data import FOR_REVIEWERS, DataTab
from asr_pt.ui.handouts import Handouts
from asr_pt.ui.login import NOT_LOGGED_IN, Login, ReviewAccess
from asr_pt.ui.review import DIFF_NOTE, EMPTY_NOTE, SAME_NOTE, ReviewTab, diff_note, short_id
from asr_pt.ui.send_to_review import SendRate, queue_for_review
from asr_pt.ui.transcribe import make_transcribe

CHROMIUM = "/usr/bin/chromium"


def queue_clips(store: ReviewStore, count: int, reference: str = "O gato dorme.") -> None:
    for n in range(count):
        store.add_item(
            (np.random.default_rng(n).standard_normal(16000) * 0.1).astype(np.float32),
            source="test",
            source_id=f"clip{n}",
            hypothesis_finetuned="o gato dorme",
            hypothesis_base="o gato come" if n == 0 else "o gato dorme",
            model_finetuned="ft",
            model_base="base",
            reference=reference,
        )


@pytest.fixture
def access() -> ReviewAccess:
    return ReviewAccess(oauth=False, reviewers={"ana": hash_password("segredo")}, allowlist=set())


def review_page(store: ReviewStore, access: ReviewAccess, folder) -> tuple[ReviewTab, DataTab]:
    """The two tabs' callbacks, to call without a server."""
    handouts = Handouts(folder=folder)
    with gr.Blocks() as demo:
        login = Login(access, ReviewerSessions(), LoginThrottle(first_delay=0))
        return ReviewTab(demo, store, login, handouts), DataTab(store, login, handouts)


def test_review_and_export_refuse_a_visitor_who_is_not_logged_in(tmp_path, access):
    store = ReviewStore(tmp_path / "data")
    queue_clips(store, 2)
    review, data = review_page(store, access, tmp_path / "handouts")
    for token in (None, "", "forged"):
        for callback, *args in (
            (review.show_next,),
            (review.save_item, "1:0", "Olá.", None),
            (review.skip_item, "1:0"),
            (review.flag_item, "1:0", "spam"),
        ):
            with pytest.raises(gr.Error, match=NOT_LOGGED_IN):
                callback(token, *args)
        with pytest.raises(gr.Error, match="Exports are for reviewers"):
            data.export(token)
        assert data.figures(token)[2] == FOR_REVIEWERS
    token, _, review_panel, message, _ = review.log_in("ana", "wrong", None)
    assert token == "" and review_panel == gr.skip() and "Wrong name or password" in message  # the panel stays shut
    assert review.log_in("nobody", "segredo", None)[0] == ""
    token, _, review_panel, _, who = review.log_in("ana", "segredo", None)
    assert token and (review_panel.visible, who) == (True, "Reviewing as **ana**.")
    assert store.counts()["pending"] == 2 and all(not store.history(i) for i in (1, 2))  # nothing was touched


def test_the_item_line_diff_and_data_tab_explain_themselves(tmp_path, access):
    store = ReviewStore(tmp_path / "data")
    queue_clips(store, 2)
    review, data = review_page(store, access, tmp_path / "handouts")
    token = review.log_in("ana", "segredo", None)[0]
    shown = dict(zip(review.item_outputs, review.show_next(token), strict=True))
    assert shown[review.info].startswith("Item 1 · test clip clip0 · 1.0 s · models disagree on 33% of words")
    assert shown[review.diff_note] == DIFF_NOTE and ("dorme→come ", "substitution") in shown[review.diff]
    assert short_id("ab" * 32) == "abababababab…" and short_id("clip0") == "clip0"
    assert diff_note("O gato.", "o gato") == SAME_NOTE and diff_note("", " ") == EMPTY_NOTE
    assert "fine-tuned model wrote nothing" in diff_note("", "o gato")
    with pytest.raises(gr.Error, match="more than 5000 characters"):
        review.save_item(token, shown[review.key], "gato " * 1001, None)
    review.save_item(token, shown[review.key], "O gato dorme.", "finetuned_better")
    counts, scores, summary, recent = data.figures(token)
    assert counts == [[0, 1, 1, 0, 0]] and data.counts.headers[:3] == ["Waiting", "Being reviewed", "Corrected"]
    assert [row[:2] for row in scores] == [
        ["written (the card's)", "Fine-tuned"],
        ["written (the card's)", "Zero-shot base"],
        ["normalised", "Fine-tuned"],
        ["normalised", "Zero-shot base"],
    ]
    assert "**1** corrected items" in summary and recent[0][1:4] == ["ana", "O gato dorme.", "Fine-tuned better"]
    assert data.figures(token) is data.figures(token)  # nothing changed: the scoreboard is not recomputed


def test_a_save_over_anothers_work_shows_their_text_and_a_second_save_replaces_it(tmp_path, access):
    store = ReviewStore(tmp_path / "data")
    queue_clips(store, 2)
    review, _ = review_page(store, access, tmp_path / "handouts")
    first, second = (review.log_in("ana", "segredo", None)[0] for _ in range(2))  # two tabs, one item
    key = review.show_next(first)[0]
    assert review.show_next(second)[0] == key
    review.save_item(second, key, "O gato dorme.", None)
    updates = dict(zip(review.item_outputs, review.save_item(first, key, "O gato come.", None), strict=True))
    assert updates[review.theirs].value == "O gato dorme." and updates[review.theirs].visible is True
    assert updates[review.key] == "1:1" and store.get(1).text == "O gato dorme."
    review.save_item(first, updates[review.key], "O gato come.", None)
    assert store.get(1).text == "O gato come." and [r.applied for r in store.history(1)] == [1, 0, 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_models(finetuned, base) -> Models:
    return Models(*(ASRModel(str(folder), max_new_tokens=4) for folder in (finetuned, base)))


def test_send_to_review_stores_the_clip_both_hypotheses_and_the_reference(
    tmp_path, speech_clips, tiny_model_dir, other_tiny_model_dir
):
    store = ReviewStore(tmp_path)
    path, sentence = speech_clips[1]
    with pytest.raises(gr.Error, match="Transcribe a clip first"):
        queue_for_review(store, None, 0, SendRate(), 10.0, "10.0.0.1")
    result, last = make_transcribe(tiny_models(tiny_model_dir, other_tiny_model_dir), 10.0)(
        str(path), "Portuguese", "", sentence
    )
    message, sent = queue_for_review(store, last, 0, SendRate(), 10.0, "10.0.0.1")
    assert "item 1" in message and sent == 1
    item = store.get(1)
    runs = result["runs"]
    assert (item.source, item.reference, item.status) == ("demo", sentence, "pending")
    assert (item.hypothesis_finetuned, item.hypothesis_base) == (
        runs["finetuned"]["transcript"]["text"],
        runs["base"]["transcript"]["text"],
    )
    assert (item.model_finetuned, item.model_base) == (str(tiny_model_dir), str(other_tiny_model_dir))
    assert store.audio_path(item.audio_hash).is_file() and item.audio_hash == content_hash(load_audio(path))


@pytest.fixture
def evil_server():
    """A server a visitor's text points at: every request the reviewer's browser makes to it is recorded."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    requests = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()


def test_reviewer_corrects_with_the_keyboard_and_visitors_texts_stay_text(
    tmp_path, access, tiny_model_dir, other_tiny_model_dir, evil_server
):
    from playwright.sync_api import expect, sync_playwright

    evil, requests = evil_server
    payload = f'![x]({evil}/md.png) <img src="{evil}/html.png"> [phish]({evil}/phish) **bold**'
    store = ReviewStore(tmp_path)
    queue_clips(store, 4, reference=payload)
    store.save(4, "bia", payload, 0)  # a correction the Data tab lists
    demo = build_demo(tiny_models(tiny_model_dir, other_tiny_model_dir), store=store, access=access)
    port = free_port()
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
            )
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}")
            expect(page.locator("#send-to-review")).to_be_visible()  # the demo stays public
            page.get_by_role("tab", name="Review").click()
            expect(page.locator("#review-editor")).to_be_hidden()
            page.get_by_label("Reviewer name").fill("ana")
            page.get_by_label("Password").fill("segredo")
            page.locator("#login-button").click()
            editor, info = page.locator("#review-editor textarea"), page.locator("#review-info textarea")
            expect(editor).to_have_value("O gato dorme.")  # the fine-tuned hypothesis in written form
            expect(info).to_have_value(re.compile("^Item 1 · test clip clip0 "))  # most disagreement first
            expect(page.locator("#review-reference textarea")).to_have_value(payload)  # as text, not rendered
            expect(page.locator("#review-diff")).to_contain_text("substitution")  # the legend
            expect(page.locator("#review-diff-note")).to_contain_text("orange")

            # the player ignores play until its clip has loaded (slow on a busy machine): wait for its duration
            expect(page.locator("#review-audio #duration")).not_to_have_text("0:00")
            editor.focus()
            page.keyboard.press("Control+Space")
            expect(page.locator("#review-audio button.play-pause-button")).to_have_attribute("aria-label", "Pause")
            editor.fill("O gato dorme na cama.")
            page.get_by_label("Fine-tuned better").check()
            editor.focus()
            page.keyboard.press("Control+Enter")
            expect(info).to_have_value(re.compile("^Item 2 "))
            page.keyboard.press("Control+ArrowRight")
            expect(info).to_have_value(re.compile("^Item 3 "))

            page.get_by_role("tab", name="Data").click()
            expect(page.locator("#data-summary")).to_contain_text("2 corrected items")
            expect(page.locator("#data-summary")).to_contain_text("Fine-tuned better 1")
            expect(page.locator("#data-recent")).to_contain_text("O gato dorme na cama.")
            expect(page.locator("#data-recent")).to_contain_text(f"![x]({evil}/md.png) <img src=")  # as text
            expect(page.locator("#data-counts")).to_contain_text("Being reviewed")
            page.wait_for_timeout(500)
            rendered = page.locator(f"img[src^='{evil}'], a[href^='{evil}']").count()
            browser.close()
    finally:
        demo.close()
    assert rendered == 0 and requests == []  # no image fetched, no link made, from the reference or a correction
    item = store.get(1)
    assert (item.status, item.text, item.verdict, item.reviewer) == (
        "corrected",
        "O gato dorme na cama.",
        "finetuned_better",
        "ana",
    )
    assert store.get(2).status == "skipped"


def test_a_new_clip_is_never_sent_with_the_last_clips_transcripts(
    tmp_path, speech_clips, tiny_model_dir, other_tiny_model_dir
):
    from playwright.sync_api import expect, sync_playwright

    store = ReviewStore(tmp_path)
    demo = build_demo(tiny_models(tiny_model_dir, other_tiny_model_dir), store=store)
    port = free_port()
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}")
            page.get_by_label("Upload file").click()
            page.locator("#audio-input input[type=file]").set_input_files(str(speech_clips[0][0]))
            page.get_by_role("button", name="Transcribe with both models").click()
            expect(page.locator("#base-info")).to_contain_text("real-time factor", timeout=60_000)
            page.locator("#audio-input button[aria-label='Clear']").click()
            page.get_by_label("Upload file").click()
            page.locator("#audio-input input[type=file]").set_input_files(str(speech_clips[1][0]))
            page.locator("#send-to-review").click()
            expect(page.get_by_text("Transcribe a clip first")).to_be_visible()
            page.get_by_role("button", name="Transcribe with both models").click()
            seconds = len(load_audio(speech_clips[1][0])) / 16000
            # The new clip's result line, not the wait estimate shown as soon as the clip is chosen ("Audio: N s. On")
            result_line = re.compile(rf"^Audio: {seconds:.1f} s( \(.*\))?$")
            expect(page.get_by_text(result_line)).to_be_visible(timeout=60_000)
            shown = [page.locator(f"#{side}-text textarea").input_value() for side in ("finetuned", "base")]
            page.locator("#send-to-review").click()
            expect(page.get_by_text("Sent to review as item 1")).to_be_visible()
            browser.close()
    finally:
        demo.close()
    [item] = [store.get(1)]
    assert store.counts()["pending"] == 1
    assert item.audio_hash == content_hash(load_audio(speech_clips[1][0]))  # the new clip, not the first one
    assert [item.hypothesis_finetuned, item.hypothesis_base] == shown  # with the transcripts made for it
    models = tiny_models(tiny_model_dir, other_tiny_model_dir)
    assert shown == [models[side].transcribe(load_audio(speech_clips[1][0])).text for side in ("finetuned", "base")]
