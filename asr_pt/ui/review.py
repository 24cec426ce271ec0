"""The Review tab: reviewers log in, then correct the next clip in the queue, give a verdict, skip or flag it.

The demo stays public; reviewing and exporting need a reviewer who logged in. On a Space that is a Hugging Face
login (optionally limited by `ASR_PT_REVIEWER_ALLOWLIST`); self-hosted, a name and password checked against the
hashes in `ASR_PT_REVIEWERS`. The reviewer's name lives in the session's server-side `gr.State`, set only after
that check, and every callback checks it again. Callbacks only call `asr_pt.review.store`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import gradio as gr

from asr_pt.metrics import align_words
from asr_pt.review.reviewers import authenticate, hf_user_allowed, load_allowlist, load_reviewers
from asr_pt.review.store import VERDICTS, ReviewStore, SaveConflict, StoreError
from asr_pt.text import normalize, written_form
from asr_pt.ui.diffs import DIFF_COLORS, spaced

VERDICT_LABELS = {
    "finetuned_better": "Fine-tuned better",
    "base_better": "Base better",
    "equal": "Both equal",
    "both_wrong": "Both wrong",
}
VERDICT_CHOICES = [(VERDICT_LABELS[verdict], verdict) for verdict in VERDICTS]
NOT_LOGGED_IN = "Log in as a reviewer to review."

# Ctrl+Enter saves, Ctrl+Space plays or pauses, Ctrl+ArrowRight skips: while the Review tab is on screen.
KEYBOARD_HEAD = """
<script>
document.addEventListener("keydown", (event) => {
  if (!event.ctrlKey) return;
  const visible = (selector) => {
    const element = document.querySelector(selector);
    return element && element.offsetParent !== null ? element : null;
  };
  let target = null;
  if (event.key === "Enter") target = visible("#review-save");
  else if (event.code === "Space") target = visible("#review-audio button.play-pause-button");
  else if (event.key === "ArrowRight") target = visible("#review-skip");
  if (target) {
    event.preventDefault();
    target.click();
  }
});
</script>
"""


@dataclass(frozen=True)
class ReviewAccess:
    """Who may review: HF users (on a Space) or configured name/password reviewers (self-hosted)."""

    oauth: bool
    reviewers: dict[str, str]
    allowlist: set[str]

    @classmethod
    def from_env(cls) -> ReviewAccess:
        return cls(oauth=bool(os.environ.get("SPACE_ID")), reviewers=load_reviewers(), allowlist=load_allowlist())


def require_reviewer(reviewer: str | None) -> str:
    if not reviewer:
        raise gr.Error(NOT_LOGGED_IN)
    return reviewer


class ReviewTab:
    """The Review tab's components and callbacks for one store."""

    def __init__(self, demo: gr.Blocks, store: ReviewStore, access: ReviewAccess, reviewer: gr.State):
        self.demo, self.store, self.access, self.reviewer = demo, store, access, reviewer
        self.current = gr.State(None)  # {"id", "version"} of the item on screen
        with gr.Column(visible=True) as self.login_panel:
            if access.oauth:
                listed = " on the reviewer list" if access.allowlist else ""
                gr.Markdown(f"Reviewing needs a Hugging Face login{listed}.")
                gr.LoginButton()
            else:
                gr.Markdown("Reviewers log in with the name and password they were given.")
                with gr.Row():
                    self.name = gr.Textbox(label="Reviewer name", elem_id="login-name")
                    self.password = gr.Textbox(label="Password", type="password", elem_id="login-password")
                self.login_button = gr.Button("Log in", elem_id="login-button")
            self.login_message = gr.Markdown(elem_id="login-message")
        with gr.Column(visible=False) as self.review_panel:
            self.who = gr.Markdown(elem_id="review-who")
            self.info = gr.Markdown(elem_id="review-info")
            self.audio = gr.Audio(
                label="Clip (the speed button plays 0.5x to 2x)",
                type="filepath",
                interactive=False,
                elem_id="review-audio",
            )
            self.timings_slot = gr.Column()  # the page puts word timings here (asr_pt.ui.timings)
            with gr.Row():
                self.finetuned = gr.Textbox(
                    label="Fine-tuned hypothesis", interactive=False, elem_id="review-finetuned"
                )
                self.base = gr.Textbox(label="Base hypothesis", interactive=False, elem_id="review-base")
            self.diff = gr.HighlightedText(
                label="Word diff: base against fine-tuned", color_map=DIFF_COLORS, elem_id="review-diff"
            )
            self.reference = gr.Markdown(elem_id="review-reference")
            self.editor = gr.Textbox(label="What was said (written form)", lines=3, elem_id="review-editor")
            self.verdict = gr.Radio(VERDICT_CHOICES, label="Which model did better?", elem_id="review-verdict")
            with gr.Row():
                self.save = gr.Button("Save (Ctrl+Enter)", variant="primary", elem_id="review-save")
                self.skip = gr.Button("Skip (Ctrl+→)", elem_id="review-skip")
            with gr.Row():
                self.reason = gr.Textbox(
                    label="Flag reason", placeholder="no speech, not Portuguese, private data...", scale=3
                )
                self.flag = gr.Button("Flag", variant="stop", elem_id="review-flag", scale=1)
            gr.Markdown("Keyboard: **Ctrl+Enter** save · **Ctrl+Space** play/pause · **Ctrl+→** skip")
            self.logout = gr.Button("Log out", size="sm")
        self.item_outputs = [
            self.current,
            self.info,
            self.audio,
            self.finetuned,
            self.base,
            self.diff,
            self.reference,
            self.editor,
            self.verdict,
            self.reason,
        ]
        self._wire()

    # -- callbacks --------------------------------------------------------------------------------------------------

    def show_next(self, reviewer: str | None) -> list:
        reviewer = require_reviewer(reviewer)
        item = self.store.claim_next(reviewer)
        if item is None:
            done = "The queue is empty: nothing left to review. Thank you!"
            return [None, done, None, "", "", [], "", "", None, ""]
        return self._show(item)

    def _show(self, item) -> list:
        counts = self.store.counts()
        info = (
            f"Item **{item.id}** from **{item.source}** (`{item.source_id}`{', test split' if item.is_test else ''})"
            f" · {item.duration:.1f} s · models disagree on {item.disagreement:.0f}% of words"
            f" · {counts['pending']} pending, {counts['skipped']} skipped"
            + (f" · already reviewed {item.reviews}x" if item.reviews else "")
        )
        reference = f"Source reference: *{item.reference}*" if item.reference else ""
        diff = spaced(align_words(normalize(item.hypothesis_finetuned), normalize(item.hypothesis_base)))
        return [
            {"id": item.id, "version": item.version},
            info,
            str(self.store.audio_path(item.audio_hash)),
            item.hypothesis_finetuned,
            item.hypothesis_base,
            diff,
            reference,
            written_form(item.hypothesis_finetuned),
            None if item.reviews else item.verdict,  # a second review is independent: no one else's verdict shown
            "",
        ]

    def save_item(self, reviewer: str | None, current: dict | None, text: str, verdict: str | None) -> list:
        reviewer = require_reviewer(reviewer)
        if not current:
            raise gr.Error("There is no item on screen.")
        try:
            self.store.save(current["id"], reviewer, text, current["version"], verdict=verdict)
        except SaveConflict as conflict:
            gr.Warning(str(conflict) + " Press Save again to replace their text with yours.")
            return [{"id": current["id"], "version": conflict.current.version}] + [gr.skip()] * 9
        except StoreError as error:
            raise gr.Error(str(error)) from error
        gr.Info("Saved.")
        return self.show_next(reviewer)

    def skip_item(self, reviewer: str | None, current: dict | None) -> list:
        reviewer = require_reviewer(reviewer)
        if current:
            try:
                self.store.skip(current["id"], reviewer, current["version"])
            except SaveConflict as conflict:
                gr.Warning(str(conflict))
            except StoreError as error:
                raise gr.Error(str(error)) from error
        return self.show_next(reviewer)

    def flag_item(self, reviewer: str | None, current: dict | None, reason: str) -> list:
        reviewer = require_reviewer(reviewer)
        if not current:
            raise gr.Error("There is no item on screen.")
        try:
            self.store.flag(current["id"], reviewer, current["version"], reason)
        except SaveConflict as conflict:
            gr.Warning(str(conflict))
        except StoreError as error:
            raise gr.Error(str(error)) from error
        return self.show_next(reviewer)

    def password_login(self, name: str, password: str) -> list:
        reviewer = authenticate(name, password, self.access.reviewers)
        if reviewer is None:
            return [None, gr.Column(visible=True), gr.Column(visible=False), "Wrong name or password.", ""]
        return [reviewer, gr.Column(visible=False), gr.Column(visible=True), "", f"Reviewing as **{reviewer}**."]

    def oauth_login(self, profile: gr.OAuthProfile | None) -> list:
        if profile is None:
            return [None, gr.Column(visible=True), gr.Column(visible=False), "", ""]
        if not hf_user_allowed(profile.username, self.access.allowlist):
            message = f"{profile.username} is not on the reviewer list."
            return [None, gr.Column(visible=True), gr.Column(visible=False), message, ""]
        who = f"Reviewing as **{profile.username}** (Hugging Face)."
        return [profile.username, gr.Column(visible=False), gr.Column(visible=True), "", who]

    def log_out(self, reviewer: str | None, current: dict | None) -> list:
        if reviewer and current:
            self.store.release(current["id"], reviewer)
        return [None, None, gr.Column(visible=True), gr.Column(visible=False), "Logged out.", ""]

    def _wire(self) -> None:
        login_outputs = [self.reviewer, self.login_panel, self.review_panel, self.login_message, self.who]
        if self.access.oauth:  # the login button reloads the page, with the profile in the session
            logins = [self.demo.load(self.oauth_login, None, login_outputs, api_visibility="private")]
        else:
            logins = [
                trigger(self.password_login, [self.name, self.password], login_outputs, api_visibility="private")
                for trigger in (self.login_button.click, self.password.submit)
            ]
        for login in logins:
            login.then(self._show_next_if_logged_in, self.reviewer, self.item_outputs, api_visibility="private")
        self.save.click(
            self.save_item,
            [self.reviewer, self.current, self.editor, self.verdict],
            self.item_outputs,
            api_visibility="private",
        )
        self.skip.click(self.skip_item, [self.reviewer, self.current], self.item_outputs, api_visibility="private")
        self.flag.click(
            self.flag_item, [self.reviewer, self.current, self.reason], self.item_outputs, api_visibility="private"
        )
        self.logout.click(
            self.log_out,
            [self.reviewer, self.current],
            [self.reviewer, self.current, self.login_panel, self.review_panel, self.login_message, self.who],
            api_visibility="private",
        )

    def _show_next_if_logged_in(self, reviewer: str | None) -> list:
        return self.show_next(reviewer) if reviewer else [gr.skip()] * len(self.item_outputs)
