"""The page in Debian's Chromium, driven by Playwright: what a visitor does, and a screenshot of what they see."""

import re
import shutil

import pytest
from playwright.sync_api import expect, sync_playwright

from asr_pt.compare import BASE, FINETUNED, pair_name
from asr_pt.metrics import score_pair

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
CHROMIUM_ARGS += ["--disable-sync"]
SCREENSHOT_COPY = "/tmp/demo-screenshot.png"  # for people looking at the page while they work on it
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def playwright():
    with sync_playwright() as p:
        yield p


def open_page(playwright, url, extra_args=(), permissions=()):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + list(extra_args))
    context = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=list(permissions))
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    expect(page.locator("#status")).to_contain_text("Zero-shot base")
    return browser, page


def transcribe_and_wait(page):
    page.get_by_role("button", name="Transcribe with both models").click()
    expect(page.locator(f"#{BASE}-info")).to_contain_text("real-time factor", timeout=TIMEOUT_MS)


def page_texts(page) -> dict[str, str]:
    return {side: page.locator(f"#{side}-text textarea").input_value() for side in (FINETUNED, BASE)}


def score_row(page, label: str) -> list[str]:
    row = page.locator("#scores tr", has_text=label)
    return [cell.strip() for cell in row.locator("td").all_inner_texts()]


def test_upload_a_clip_and_read_both_transcripts_and_the_wer(playwright, demo_url, speech_clips, tmp_path):
    browser, page = open_page(playwright, demo_url)
    try:
        page.get_by_label("Upload file").click()
        page.locator("#audio-input input[type=file]").set_input_files(str(speech_clips[5][0]))
        expect(page.locator("#audio-input")).to_contain_text("0:0")  # the player shows the clip's length
        page.get_by_label("Reference transcript (optional)").fill(speech_clips[5][1])
        transcribe_and_wait(page)
        texts = page_texts(page)
        between = score_row(page, "Zero-shot base vs fine-tuned")
        reference = score_row(page, "Fine-tuned vs reference")
        page.screenshot(path=tmp_path / "demo.png", full_page=True)
        shutil.copy(tmp_path / "demo.png", SCREENSHOT_COPY)
    finally:
        browser.close()
    assert texts[FINETUNED] and texts[BASE] and texts[FINETUNED] != texts[BASE]
    assert float(between[1]) == pytest.approx(score_pair(texts[FINETUNED], texts[BASE], "written").wer, abs=0.05)
    assert float(reference[1]) == pytest.approx(score_pair(speech_clips[5][1], texts[FINETUNED]).wer, abs=0.05)
    assert (tmp_path / "demo.png").stat().st_size > 50_000


def test_an_example_fills_the_form_and_its_reference_is_diffed(playwright, demo_url):
    browser, page = open_page(playwright, demo_url)
    try:
        page.get_by_text("example2.wav").click()
        expect(page.get_by_label("Reference transcript (optional)")).to_have_value("O gato dorme no sofá.")
        transcribe_and_wait(page)
        diff = page.locator(f"#diff-{pair_name(FINETUNED, 'reference')}").inner_text()
        rows = [
            score_row(page, label)[0] for label in ("vs fine-tuned", "Fine-tuned vs reference", "base vs reference")
        ]
    finally:
        browser.close()
    assert all(word in diff for word in ("gato", "dorme", "sofá"))  # every reference word is in the diff, as it is
    assert rows == ["Zero-shot base vs fine-tuned", "Fine-tuned vs reference", "Zero-shot base vs reference"]


def test_record_through_the_microphone(playwright, demo_url, speech_clips):
    """Chromium's fake microphone plays a real clip; the page records it, uploads it and transcribes it."""
    fake_microphone = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={speech_clips[6][0]}",
    ]
    browser, page = open_page(playwright, demo_url, fake_microphone, permissions=["microphone"])
    try:
        page.get_by_role("button", name="Record", exact=True).click()
        page.wait_for_timeout(2500)
        # The recording uploads after Stop; transcribing before the upload ends would send no audio.
        with page.expect_response(lambda response: "/gradio_api/upload" in response.url and response.ok):
            page.get_by_role("button", name="Stop", exact=True).first.click()
        expect(page.locator("#audio-input")).to_contain_text("0:0")
        transcribe_and_wait(page)
        texts = page_texts(page)
        audio_line = page.get_by_text(re.compile(r"Audio: \d")).inner_text()
    finally:
        browser.close()
    assert texts[FINETUNED] and texts[BASE]
    seconds = float(re.search(r"Audio: ([\d.]+) s", audio_line).group(1))
    assert 1.5 < seconds < 5  # about the time the record button was held
