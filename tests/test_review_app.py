"""The Review and Data tabs: closed to visitors, and a reviewer's keyboard-only correction in Chromium."""

import socket

import gradio as gr
import numpy as np
import pytest

from asr_pt.reviewers import hash_password
from asr_pt.store import ReviewStore
from review_ui import KEYBOARD_HEAD, NOT_LOGGED_IN, DataTab, ReviewAccess, ReviewTab, review_tabs

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_reviewer_corrects_an_item_with_the_keyboard_and_sees_it_counted(tmp_path, access):
    from playwright.sync_api import expect, sync_playwright

    store = ReviewStore(tmp_path)
    queue_clips(store, 3)
    with gr.Blocks() as demo:
        with gr.Tabs():
            with gr.Tab("Transcribe"):
                gr.Markdown("demo")
            review_tabs(demo, store, access)
    port = free_port()
    demo.launch(server_port=port, prevent_thread_lock=True, head=KEYBOARD_HEAD)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
            )
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}")
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
