"""The Space's review side: "send to review" on the Transcribe tab, the Review tab and the Data tab.

The demo stays public; reviewing and exporting need a reviewer who logged in. On a Space that is a Hugging Face
login (optionally limited by `ASR_PT_REVIEWER_ALLOWLIST`); self-hosted, a name and password checked against the
hashes in `ASR_PT_REVIEWERS`. The reviewer's name lives in the session's server-side `gr.State`, set only after
that check, and every callback checks it again. Callbacks only call `asr_pt.store`, `asr_pt.scoreboard` and
`asr_pt.dataset_export`.
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from asr_pt.audio import load_audio
from asr_pt.dataset_export import export_dataset
from asr_pt.metrics import align_words
from asr_pt.reviewers import authenticate, hf_user_allowed, load_allowlist, load_reviewers
from asr_pt.scoreboard import scoreboard
from asr_pt.store import STATUSES, VERDICTS, ReviewStore, SaveConflict, StoreError
from asr_pt.text import normalize, written_form

VERDICT_LABELS = {
    "finetuned_better": "Fine-tuned better",
    "base_better": "Base better",
    "equal": "Both equal",
    "both_wrong": "Both wrong",
}
VERDICT_CHOICES = [(VERDICT_LABELS[verdict], verdict) for verdict in VERDICTS]
DIFF_COLORS = {"substitution": "#f59e0b", "insertion": "#10b981", "deletion": "#ef4444"}
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


def queue_for_review(store: ReviewStore, audio: str | None, reference: str, result: dict | None) -> str:
    """Store the Transcribe tab's clip with both hypotheses (and the reference) for reviewers."""
    if not audio or not result or not result.get("runs"):
        raise gr.Error("Transcribe a clip first, then send it to review.")
    runs = result["runs"]
    texts = {side: (runs[side].get("transcript") or {}).get("text") for side in ("finetuned", "base")}
    if None in texts.values():
        raise gr.Error("Both models must have transcribed the clip before it can be reviewed.")
    item_id = store.add_item(
        load_audio(audio),
        reference=reference or "",
        hypothesis_finetuned=texts["finetuned"],
        hypothesis_base=texts["base"],
        model_finetuned=runs["finetuned"]["model_id"],
        model_base=runs["base"]["model_id"],
    )
    return f"Sent to review as item {item_id}. Thank you!"


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
        words = align_words(normalize(item.hypothesis_finetuned), normalize(item.hypothesis_base))
        diff = [(word + " ", tag) for word, tag in words]  # HighlightedText runs unmarked words together
        return [
            {"id": item.id, "version": item.version},
            info,
            str(self.store.audio_path(item.audio_hash)),
            item.hypothesis_finetuned,
            item.hypothesis_base,
            diff,
            reference,
            written_form(item.hypothesis_finetuned),
            item.verdict,
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


class DataTab:
    """Counts, the live scoreboard, recent corrections, and an export for reviewers."""

    def __init__(self, store: ReviewStore, reviewer: gr.State):
        self.store, self.reviewer = store, reviewer
        self.counts = gr.Dataframe(
            headers=list(STATUSES), label="Items by status", interactive=False, elem_id="data-counts"
        )
        self.scores = gr.Dataframe(
            headers=["protocol", "model", "WER %", "CER %"],
            label="Both models against the reviewers' corrections",
            interactive=False,
            elem_id="data-scores",
        )
        self.summary = gr.Markdown(elem_id="data-summary")
        self.recent = gr.Dataframe(
            headers=["item", "reviewer", "correction", "verdict", "when"],
            label="Recent corrections",
            interactive=False,
            elem_id="data-recent",
        )
        with gr.Row():
            refresh = gr.Button("Refresh", size="sm", elem_id="data-refresh")
            export = gr.Button("Export the dataset (reviewers)", size="sm", elem_id="data-export")
        self.download = gr.File(label="Export (zip: parquet, sft.jsonl, card)", visible=False)
        outputs = [self.counts, self.scores, self.summary, self.recent]
        refresh.click(self.figures, None, outputs, api_visibility="private")
        gr.Timer(15).tick(self.figures, None, outputs, api_visibility="private")
        export.click(self.export, self.reviewer, self.download, api_visibility="private")
        self.load_outputs = outputs

    def figures(self) -> list:
        counts = self.store.counts()
        board = scoreboard(self.store)
        verdicts = ", ".join(f"{label} **{board.verdicts[value]}**" for label, value in VERDICT_CHOICES)
        agreement = (
            f"{board.double_reviewed} items reviewed twice or more, mean WER between reviewers "
            f"**{board.mean_agreement_wer:.1f}%**"
            if board.mean_agreement_wer is not None
            else "no item has two reviews yet"
        )
        summary = f"**{board.items}** corrected items. Verdicts: {verdicts}. Agreement: {agreement}."
        recent = [
            [item.id, item.reviewer, item.text, item.verdict or "", _when(item.corrected_at)]
            for item in self.store.corrected(limit=10, newest_first=True)
        ]
        return [[[counts[status] for status in STATUSES]], board.rows(), summary, recent]

    def export(self, reviewer: str | None):
        require_reviewer(reviewer)
        folder = Path(tempfile.mkdtemp(prefix="asr-pt-export-"))
        export_dataset(self.store, folder / "dataset")
        archive = shutil.make_archive(
            str(folder / f"asr-pt-reviews-{time.strftime('%Y%m%d-%H%M%S')}"), "zip", folder / "dataset"
        )
        return gr.File(value=archive, visible=True)


def _when(timestamp: float | None) -> str:
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else ""


def send_to_review_button(store: ReviewStore, audio: gr.Audio, reference: gr.Textbox, result: gr.JSON) -> None:
    """The Transcribe tab's "send to review": under the results, for any visitor."""
    with gr.Row():
        button = gr.Button("Send to review", size="sm", elem_id="send-to-review")
        message = gr.Markdown("Stores this clip and both transcripts for our reviewers to correct.")
    button.click(
        lambda a, r, res: queue_for_review(store, a, r, res),
        [audio, reference, result],
        message,
        api_visibility="private",
    )


def review_tabs(demo: gr.Blocks, store: ReviewStore, access: ReviewAccess) -> None:
    """The Review and Data tabs, inside the page's `gr.Tabs`."""
    with gr.Tab("Review"):
        reviewer = gr.State(None)  # the logged-in reviewer's name, server-side; inside a tab, not among the tabs
        ReviewTab(demo, store, access, reviewer)
    with gr.Tab("Data") as data:
        tab = DataTab(store, reviewer)
    data.select(tab.figures, None, tab.load_outputs, api_visibility="private")
