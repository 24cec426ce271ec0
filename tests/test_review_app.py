"""The Review and Data tabs: closed to visitors, and a reviewer's keyboard-only correction in Chromium."""

import socket

import gradio as gr
import numpy as np
import pytest

from asr_pt.audio import content_hash, load_audio
from asr_pt.models import ASRModel
from asr_pt.review.reviewers import hash_password
from asr_pt.review.store import ReviewStore
from asr_pt.ui import Models, build_demo, launch
from asr_pt.ui.data import DataTab
from asr_pt.ui.review import NOT_LOGGED_IN, ReviewAccess, ReviewTab
from asr_pt.ui.send_to_review import SendRate, queue_for_review
from asr_pt.ui.transcribe import make_transcribe

CHROMIUM = "/usr/bin/chromium"


def queue_clips(store: ReviewStore, count: int) -> None:
    for n in range(count):
        store.add_item(
            (np.random.default_rng(n).standard_normal(16000) * 0.1).astype(np.float32),
            source_id=f"clip{n}",
            hypothesis_finetuned="o gato dorme",
            hypothesis_base="o gato come" if n == 0 else "o gato dorme",
            model_finetuned="ft",
            model_base="base",
            reference="O gato dorme.",
        )


@pytest.fixture
def access() -> ReviewAccess:
    return ReviewAccess(oauth=False, reviewers={"ana": hash_password("segredo")}, allowlist=set())


def test_review_and_export_refuse_a_visitor_who_is_not_logged_in(tmp_path, access):
    store = ReviewStore(tmp_path)
    queue_clips(store, 2)
    with gr.Blocks() as demo:
        reviewer = gr.State(None)
        review, data = ReviewTab(demo, store, access, reviewer), DataTab(store, reviewer)
    for call in (
        lambda: review.show_next(None),
        lambda: review.save_item(None, {"id": 1, "version": 0}, "Olá.", None),
        lambda: review.skip_item(None, {"id": 1, "version": 0}),
        lambda: review.flag_item(None, {"id": 1, "version": 0}, "spam"),
        lambda: data.export(None),
    ):
        with pytest.raises(gr.Error, match=NOT_LOGGED_IN):
            call()
    name, _, review_panel, message, _ = review.password_login("ana", "wrong")
    assert name is None and review_panel.visible is False and "Wrong name or password" in message
    assert review.password_login("nobody", "segredo")[0] is None
    name, _, review_panel, _, who = review.password_login("ana", "segredo")
    assert (name, review_panel.visible, who) == ("ana", True, "Reviewing as **ana**.")
    assert store.counts()["pending"] == 2 and all(not store.history(i) for i in (1, 2))  # nothing was touched


def test_export_keeps_one_zip_and_figures_follow_the_store(tmp_path, access):
    import zipfile

    store = ReviewStore(tmp_path)
    queue_clips(store, 2)
    with gr.Blocks():
        data = DataTab(store, gr.State(None))
    before = data.figures()
    assert data.figures() is before  # nothing changed: the scoreboard is not recomputed
    item = store.claim_next("ana")
    store.save(item.id, "ana", "O gato dorme.", item.version, verdict="equal")
    after = data.figures()
    assert after is not before and "**1** corrected items" in after[2]
    data.export("ana")
    data.export("ana")
    [archive_path] = (tmp_path / "exports").iterdir()  # the older zip is gone
    with zipfile.ZipFile(archive_path) as archive:
        assert any(name.endswith(".parquet") for name in archive.namelist())


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
        queue_for_review(store, None, 0, SendRate(), 10.0)
    result, last = make_transcribe(tiny_models(tiny_model_dir, other_tiny_model_dir), 10.0)(
        str(path), "Portuguese", "", sentence
    )
    message, sent = queue_for_review(store, last, 0, SendRate(), 10.0)
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


def test_reviewer_corrects_an_item_with_the_keyboard_and_sees_it_counted(
    tmp_path, access, tiny_model_dir, other_tiny_model_dir
):
    from playwright.sync_api import expect, sync_playwright

    store = ReviewStore(tmp_path)
    queue_clips(store, 3)
    demo = build_demo(tiny_models(tiny_model_dir, other_tiny_model_dir), store=store, access=access)
    port = free_port()
    launch(demo, store=store, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
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
            editor = page.locator("#review-editor textarea")
            expect(editor).to_have_value("O gato dorme.")  # the fine-tuned hypothesis in written form
            expect(page.locator("#review-info")).to_contain_text("Item 1 ")  # most disagreement first

            editor.focus()
            page.keyboard.press("Control+Space")
            expect(page.locator("#review-audio button.play-pause-button")).to_have_attribute("aria-label", "Pause")
            editor.fill("O gato dorme na cama.")
            page.get_by_label("Fine-tuned better").check()
            editor.focus()
            page.keyboard.press("Control+Enter")
            expect(page.locator("#review-info")).to_contain_text("Item 2 ")
            page.keyboard.press("Control+ArrowRight")
            expect(page.locator("#review-info")).to_contain_text("Item 3 ")

            page.get_by_role("tab", name="Data").click()
            expect(page.locator("#data-summary")).to_contain_text("1 corrected items")
            expect(page.locator("#data-summary")).to_contain_text("Fine-tuned better 1")
            expect(page.locator("#data-recent")).to_contain_text("O gato dorme na cama.")
            browser.close()
    finally:
        demo.close()
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
    launch(demo, store=store, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
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
            expect(page.get_by_text(f"Audio: {seconds:.1f} s")).to_be_visible(timeout=60_000)  # the new clip's result
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
