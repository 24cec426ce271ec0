"""The Review tab: reviewers log in, then correct the next clip in the queue, give a verdict, skip or flag it.

The demo stays public; reviewing needs a login (`asr_pt.ui.login`), which every callback checks. What the
reviewer was shown (item and version) is kept server-side with the login, and a save, skip or flag must name that
very item and version: a replayed or forged request for any other item is refused. Texts from visitors and datasets
are shown in text boxes, never as Markdown. The clip is handed to the reviewer as a short-lived copy
(`asr_pt.ui.handouts`); the store's folder is never served.
"""

from __future__ import annotations

import html
import logging
import time

import gradio as gr

from asr_pt.metrics import align_words
from asr_pt.review.items import VERDICTS, Item, SaveConflict, StoreError
from asr_pt.review.logins import Session
from asr_pt.review.store import ReviewStore
from asr_pt.text import normalize, written_form
from asr_pt.ui.diffs import DIFF_COLORS, spaced
from asr_pt.ui.handouts import Handouts
from asr_pt.ui.login import Login, refusal

log = logging.getLogger("asr_pt.review")

VERDICT_LABELS = {
    "finetuned_better": "Fine-tuned better",
    "base_better": "Base better",
    "equal": "Both equal",
    "both_wrong": "Both wrong",
}
VERDICT_CHOICES = [(VERDICT_LABELS[verdict], verdict) for verdict in VERDICTS]
PROFILE_KEYS = ("name", "preferred_username", "profile", "picture")  # what gr.OAuthProfile reads
MAX_TEXT_CHARS = 5000  # a correction or a flag reason; training keeps transcripts of at most 500
NOT_ON_SCREEN = "Nothing was done: this request is for an item that is not the one on your screen."
DIFF_NOTE = (
    "Base hypothesis against the fine-tuned one, word by word, in lower case without punctuation: "
    "**orange** a word the base wrote differently (fine-tuned→base), **green** a word only the base wrote, "
    "**red** a word only the fine-tuned model wrote."
)
SAME_NOTE = "Both models wrote the same words (ignoring case and punctuation): nothing to highlight."
EMPTY_NOTE = "Both models wrote nothing for this clip: nothing to compare."
ONE_EMPTY_NOTE = "The {side} model wrote nothing for this clip: every word of the other one is marked."

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

# A login that worked takes away the red toasts of what it fixed (a refused request made before it).
CLOSE_TOASTS = "() => document.querySelectorAll('.toast-close.error').forEach((button) => button.click())"


def short_id(source_id: str, keep: int = 12) -> str:
    """A clip id short enough to read: the demo's ids are 64-character content hashes."""
    return source_id if len(source_id) <= keep + 4 else source_id[:keep] + "…"


def diff_note(finetuned: str, base: str) -> str:
    """What the diff shows, and why it is empty when it is."""
    finetuned, base = normalize(finetuned).strip(), normalize(base).strip()
    if not finetuned and not base:
        return EMPTY_NOTE
    if not finetuned or not base:
        return ONE_EMPTY_NOTE.format(side="fine-tuned" if not finetuned else "base")
    return SAME_NOTE if finetuned == base else DIFF_NOTE


def hf_profile(request: gr.Request | None) -> gr.OAuthProfile | None:
    """The OAuth profile in the request's session (set by gradio's login callback), read from the raw session:
    gradio's own injection of `gr.OAuthProfile` into queued events fails on a profile that lists organisations
    (its `Request` turns the session into objects and cannot turn a list of them)."""
    try:
        session = getattr(getattr(request, "request", None), "session", None)
    except AssertionError:  # no session middleware: gradio attached no OAuth
        return None
    info = session.get("oauth_info") if isinstance(session, dict) else None
    expires = info.get("expires_at") if isinstance(info, dict) else None
    if not isinstance(expires, int | float) or expires < time.time():
        return None  # no login, or one that lapsed (gradio's login button logs it out too)
    userinfo = info.get("userinfo")
    if not isinstance(userinfo, dict) or not all(key in userinfo for key in PROFILE_KEYS):
        return None
    return gr.OAuthProfile(userinfo)


def item_key(item: tuple[int, int] | None) -> str:
    """The item and version on screen, as the page holds them: "id:version"."""
    return f"{item[0]}:{item[1]}" if item else ""


class ReviewTab:
    """The Review tab's components and callbacks for one store."""

    def __init__(self, demo: gr.Blocks, store: ReviewStore, login: Login, handouts: Handouts):
        self.demo, self.store, self.login, self.handouts = demo, store, login, handouts
        with gr.Column(visible=False) as self.review_panel:
            self.who = gr.Markdown(elem_id="review-who")
            self.key = gr.Textbox(visible=False, elem_id="review-key")  # checked against the login's item
            self.info = gr.Textbox(label="Item", interactive=False, elem_id="review-info")
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
                label="Word diff: base against fine-tuned",
                color_map=DIFF_COLORS,
                show_legend=True,
                elem_id="review-diff",
            )
            self.diff_note = gr.Markdown(elem_id="review-diff-note")  # only the fixed notes above
            self.reference = gr.Textbox(
                label="Source reference (from the dataset or the visitor; may be wrong)",
                interactive=False,
                elem_id="review-reference",
            )
            self.theirs = gr.Textbox(
                label="Saved meanwhile by another reviewer", interactive=False, visible=False, elem_id="review-theirs"
            )
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
            self.key,
            self.info,
            self.audio,
            self.finetuned,
            self.base,
            self.diff,
            self.diff_note,
            self.reference,
            self.theirs,
            self.editor,
            self.verdict,
            self.reason,
        ]
        self.login_outputs = [login.token, login.panel, self.review_panel, login.message, self.who]
        self._wire()

    # -- callbacks --------------------------------------------------------------------------------------------------

    def show_next(self, token: str | None) -> list:
        """The reviewer's next item (the one they hold, after a reload), or a thank-you when the queue is empty."""
        session = self.login.require(token)
        item = self.store.claim_next(session.reviewer)
        if item is None:
            session.item = None
            self.handouts.take_back(session, "clip")
            done = "The queue is empty: nothing left to review. Thank you!"
            return ["", done, None, "", "", [], "", "", gr.Textbox(value="", visible=False), "", None, ""]
        return self._show(session, item)

    def _show(self, session: Session, item: Item) -> list:
        session.item = (item.id, item.version)
        counts = self.store.counts()
        info = (
            f"Item {item.id} · {item.source} clip {short_id(item.source_id)}{', test split' if item.is_test else ''}"
            f" · {item.duration:.1f} s · models disagree on {item.disagreement:.0f}% of words"
            f" · {counts['pending']} waiting, {counts['skipped']} skipped"
            + (f" · already reviewed {item.reviews}x" if item.reviews else "")
        )
        clip = self.handouts.copy(session, "clip", self.store.audio_path(item.audio_hash), f"item-{item.id}.wav")
        diff = spaced(align_words(normalize(item.hypothesis_finetuned), normalize(item.hypothesis_base)))
        return [
            item_key(session.item),
            info,
            clip,
            item.hypothesis_finetuned,
            item.hypothesis_base,
            diff,
            diff_note(item.hypothesis_finetuned, item.hypothesis_base),
            item.reference,
            gr.Textbox(value="", visible=False),
            written_form(item.hypothesis_finetuned),
            None if item.reviews else item.verdict,  # a second review is independent: no one else's verdict shown
            "",
        ]

    def on_screen(self, session: Session, key: str | None) -> tuple[int, int]:
        """The item and version the request names, when they are the ones this login was shown; else refused."""
        if not session.item or key != item_key(session.item):
            log.info("review: %r sent %r while %r is on screen", session.reviewer, key, session.item)
            raise refusal(NOT_ON_SCREEN)
        return session.item

    def save_item(self, token: str | None, key: str | None, text: str, verdict: str | None) -> list:
        session = self.login.require(token)
        item_id, version = self.on_screen(session, key)
        if len(text or "") > MAX_TEXT_CHARS:
            raise refusal(f"Not saved: a transcript of more than {MAX_TEXT_CHARS} characters is not one clip's.")
        try:
            self.store.save(item_id, session.reviewer, text, version, verdict=verdict)
        except SaveConflict as conflict:
            # Their text goes in a text box, never in the pop-up, which renders HTML.
            session.item = (item_id, conflict.current.version)
            who = html.escape(conflict.last.reviewer) if conflict.last else "another reviewer"
            gr.Warning(f"Not saved over {who}'s work on item {item_id}. Press Save again to replace their text.")
            updates = [gr.skip()] * len(self.item_outputs)
            updates[self.item_outputs.index(self.key)] = item_key(session.item)
            updates[self.item_outputs.index(self.theirs)] = gr.Textbox(value=conflict.current.text or "", visible=True)
            return updates
        except StoreError as error:
            raise refusal(str(error)) from error
        gr.Info("Saved.")
        return self.show_next(token)

    def skip_item(self, token: str | None, key: str | None) -> list:
        session = self.login.require(token)
        if session.item:
            item_id, version = self.on_screen(session, key)
            try:
                self.store.skip(item_id, session.reviewer, version)
            except SaveConflict:
                gr.Warning(f"Item {item_id} was changed by another reviewer meanwhile: it was not skipped.")
            except StoreError as error:
                raise refusal(str(error)) from error
        return self.show_next(token)

    def flag_item(self, token: str | None, key: str | None, reason: str) -> list:
        session = self.login.require(token)
        item_id, version = self.on_screen(session, key)
        if len(reason or "") > MAX_TEXT_CHARS:
            raise refusal(f"Not flagged: say why in at most {MAX_TEXT_CHARS} characters.")
        try:
            self.store.flag(item_id, session.reviewer, version, reason)
        except SaveConflict:
            gr.Warning(f"Item {item_id} was changed by another reviewer meanwhile: it was not flagged.")
        except StoreError as error:
            raise refusal(str(error)) from error
        return self.show_next(token)

    def log_in(self, name: str, password: str, request: gr.Request) -> list:
        return self._logged_in(*self.login.password_login(name, password, request))

    def log_in_hf(self, request: gr.Request) -> list:
        """The Hugging Face account the page's signed session cookie names, if any, logged in as a reviewer."""
        profile = hf_profile(request)
        if profile is None:  # a visitor: nothing changes on their page
            return [gr.skip()] * len(self.login_outputs)
        return self._logged_in(*self.login.oauth_login(profile))

    def _logged_in(self, token: str, message: str) -> list:
        if not token:
            # Nothing is sent to the review panel: gradio 6.17 keeps a panel that starts hidden hidden for good once
            # it got any update before its first showing (gradio-app/gradio#13494, fixed in 6.20).
            return ["", gr.skip(), gr.skip(), message, gr.skip()]
        return [token, gr.Column(visible=False), gr.Column(visible=True), "", message]

    def log_out(self, token: str | None) -> list:
        """The token stops working, the item goes back to the queue and the files handed out are deleted."""
        session = self.login.log_out(token)
        if session is not None:
            if session.item:
                self.store.release(session.item[0], session.reviewer)
            self.handouts.take_back(session)
        return ["", gr.Column(visible=True), gr.Column(visible=False), "Logged out.", ""]

    def _show_next_if_logged_in(self, token: str | None) -> list:
        return self.show_next(token) if self.login.sessions.get(token) else [gr.skip()] * len(self.item_outputs)

    def _wire(self) -> None:
        if self.login.access.oauth:  # the login button reloads the page, with the profile in the session
            logins = [self.demo.load(self.log_in_hf, None, self.login_outputs, api_visibility="private")]
        else:
            inputs = [self.login.name, self.login.password]
            logins = [
                trigger(self.log_in, inputs, self.login_outputs, api_visibility="private")
                for trigger in (self.login.button.click, self.login.password.submit)
            ]
        for login in logins:
            login.then(
                self._show_next_if_logged_in, self.login.token, self.item_outputs, api_visibility="private"
            ).then(None, js=CLOSE_TOASTS, api_visibility="private")
        token, key = self.login.token, self.key
        self.save.click(
            self.save_item, [token, key, self.editor, self.verdict], self.item_outputs, api_visibility="private"
        )
        self.skip.click(self.skip_item, [token, key], self.item_outputs, api_visibility="private")
        self.flag.click(self.flag_item, [token, key, self.reason], self.item_outputs, api_visibility="private")
        self.logout.click(self.log_out, token, self.login_outputs, api_visibility="private")
