"""The page as visitors and reviewers meet it, in Chromium (issue 18): the export ends in a file the browser saves,
and a wrong password followed by the right one opens the editor and takes the stale toasts away. One page, served
once for the module, with a review store and a reviewer."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import free_port
from playwright.sync_api import expect, sync_playwright
from test_app_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS

from asr_pt.models import ASRModel
from asr_pt.review.reviewers import hash_password
from asr_pt.review.store import ReviewStore
from asr_pt.ui import Models, build_demo, launch
from asr_pt.ui.login import ReviewAccess

DESKTOP = {"width": 1366, "height": 900}


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model_dir, other_tiny_model_dir):
    """(url, store): the page with a store of three items, two of them corrected, and the reviewer ana."""
    store = ReviewStore(tmp_path_factory.mktemp("page-store"))
    for n in range(3):
        store.add_item(
            (np.random.default_rng(n).standard_normal(16000) * 0.1).astype(np.float32),
            source="test",
            source_id=f"clip{n}",
            hypothesis_finetuned="o gato dorme",
            hypothesis_base="o gato come",
            model_finetuned="ft",
            model_base="base",
        )
    for item_id in (1, 2):
        store.save(item_id, "bia", f"O gato {item_id} dorme.", 0)
    access = ReviewAccess(oauth=False, reviewers={"ana": hash_password("segredo")}, allowlist=set())
    models = Models(*(ASRModel(str(folder), max_new_tokens=4) for folder in (tiny_model_dir, other_tiny_model_dir)))
    demo = build_demo(models, store=store, access=access)
    port = free_port()
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    yield f"http://127.0.0.1:{port}/", store
    demo.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def new_page(browser, url: str, viewport: dict = DESKTOP):
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    return page


def log_in(page, password: str) -> None:
    page.get_by_role("tab", name="Review").click()
    page.get_by_label("Reviewer name").fill("ana")
    page.get_by_label("Password").fill(password)
    page.locator("#login-button").click()


def test_a_wrong_password_then_the_right_one_opens_the_editor_and_clears_the_red_toasts(browser, served):
    url, _ = served
    page = new_page(browser, url)
    try:
        page.get_by_role("tab", name="Data").click()
        page.locator("#data-export").click()  # a visitor's refused export: a red toast
        expect(page.locator(".toast-close.error").first).to_be_visible()
        log_in(page, "wrong")
        expect(page.locator("#login-message")).to_contain_text("Wrong name or password")
        page.wait_for_timeout(1200)  # the throttle's first wait is 1 s
        page.get_by_label("Password").fill("segredo")
        page.locator("#login-button").click()
        expect(page.locator("#review-editor textarea")).to_have_value("O gato dorme.")
        expect(page.locator("#review-who")).to_contain_text("Reviewing as ana")
        expect(page.locator(".toast-close.error")).to_have_count(0)
        page.get_by_role("tab", name="Data").click()
        page.get_by_role("tab", name="Review").click()
        expect(page.locator("#review-editor")).to_be_visible()  # switching tabs keeps it
        page.get_by_role("button", name="Log out").click()
        log_in(page, "segredo")  # and a second login after a logout
        expect(page.locator("#review-editor")).to_be_visible()
    finally:
        page.context.close()


def test_the_export_is_a_file_the_browser_saves_and_it_holds_the_corrections(browser, served):
    url, store = served
    page = new_page(browser, url)
    try:
        log_in(page, "segredo")
        expect(page.locator("#review-editor")).to_be_visible()
        page.get_by_role("tab", name="Data").click()
        with page.expect_download() as download:
            page.locator("#data-export").click()
        saved = download.value
        content = open(saved.path(), "rb").read()
        name = saved.suggested_filename
        expect(page.locator("#data-download")).to_be_visible()  # a second copy is one click away
    finally:
        page.context.close()
    assert name.startswith("asr-pt-reviews-") and name.endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        names = set(archive.namelist())
        with archive.open("data/train-00000-of-00001.parquet") as parquet:
            texts = pq.read_table(parquet, columns=["text"]).column("text").to_pylist()
    assert {"README.md", "sft.jsonl", "data/train-00000-of-00001.parquet"} <= names
    assert sorted(texts) == sorted(item.text for item in store.corrected())
    assert sorted(texts) == ["O gato 1 dorme.", "O gato 2 dorme."]
