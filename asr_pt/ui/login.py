"""The reviewers' login, shared by the Review and Data tabs.

On a Space reviewers log in with Hugging Face, and only the accounts and organisations `ASR_PT_REVIEWER_ALLOWLIST`
names may review (an empty list: nobody); self-hosted, with
a name and a password checked against the hashes in `ASR_PT_REVIEWERS`. A login puts a random token in a hidden
box on the page; every reviewer callback looks the token up in `ReviewerSessions` (server-side) before doing
anything, so a forged or replayed token, or none, gets nothing. Guessing is slowed down and locked out by
`LoginThrottle`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import gradio as gr

from asr_pt.review.logins import MAX_NAME_CHARS, LoginThrottle, ReviewerSessions, Session, wait_message
from asr_pt.review.reviewers import (
    authenticate,
    hf_user_allowed,
    load_allowlist,
    load_reviewers,
    near_misses,
    profile_orgs,
)
from asr_pt.settings import Settings
from asr_pt.ui.clients import request_address

log = logging.getLogger("asr_pt.logins")

NOT_LOGGED_IN = "Log in as a reviewer to review."
MAX_PASSWORD_CHARS = 1000
NO_REVIEWERS = (
    "No reviewer is configured, so nobody can log in. To add one, run `python -m asr_pt hash-password NAME`, put "
    "the `NAME:scrypt$...` line it prints in `ASR_PT_REVIEWERS` (single-quoted, or in a file whose path it holds) "
    "and restart the app."
)
NO_ALLOWLIST = (
    "No Hugging Face account may review yet. To let reviewers in, list their Hugging Face user names (or whole "
    "organisations as `org:NAME`), comma-separated, in the Space's variable `ASR_PT_REVIEWER_ALLOWLIST` "
    "(Settings → Variables and secrets) and restart the Space."
)
NOT_ON_LIST = "{name} is not on this Space's reviewer list: ask its owner to add you to `ASR_PT_REVIEWER_ALLOWLIST`."


@dataclass(frozen=True)
class ReviewAccess:
    """Who may review: HF users (on a Space) or configured name/password reviewers (self-hosted)."""

    oauth: bool
    reviewers: dict[str, str]
    allowlist: frozenset[str]  # HF user names and `org:NAME`s, exactly as Hugging Face spells them

    @classmethod
    def from_settings(cls, settings: Settings) -> ReviewAccess:
        return cls(
            oauth=settings.oauth,
            reviewers=load_reviewers(settings.reviewers),
            allowlist=load_allowlist(settings.reviewer_allowlist),
        )


def as_text(text: str) -> str:
    """Text that Markdown shows as it is: punctuation backslash-escaped, so a name cannot become a link or image."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>&~])", r"\\\1", text)


def refusal(message: str) -> gr.Error:
    """The error a refused request raises: one log line and the message, no traceback."""
    log.info("refused: %s", message)
    return gr.Error(message, print_exception=False)


class Login:
    """The login panel, the page's token box, and the callbacks that log in and out."""

    def __init__(
        self, access: ReviewAccess, sessions: ReviewerSessions, throttle: LoginThrottle, *, trust_proxy: bool = False
    ):
        self.access, self.sessions, self.throttle, self.trust_proxy = access, sessions, throttle, trust_proxy
        self.token = gr.Textbox(visible=False, elem_id="reviewer-token")  # random; worthless unless in `sessions`
        with gr.Column(visible=True) as self.panel:
            if access.oauth and not access.allowlist:
                log.warning(NO_ALLOWLIST)
                gr.Markdown(NO_ALLOWLIST, elem_id="no-reviewers")
                gr.LoginButton()
            elif access.oauth:
                gr.Markdown("Reviewing needs a Hugging Face login on this Space's reviewer list.")
                gr.LoginButton()
            elif not access.reviewers:
                log.warning(NO_REVIEWERS)
                gr.Markdown(NO_REVIEWERS, elem_id="no-reviewers")
            else:
                gr.Markdown("Reviewers log in with the name and password they were given.")
            if not access.oauth:
                with gr.Row():
                    self.name = gr.Textbox(label="Reviewer name", elem_id="login-name")
                    self.password = gr.Textbox(label="Password", type="password", elem_id="login-password")
                self.button = gr.Button("Log in", elem_id="login-button")
            self.message = gr.Markdown(elem_id="login-message")

    def require(self, token: str | None) -> Session:
        """The caller's login, or the error every reviewer callback gives a visitor."""
        session = self.sessions.get(token)
        if session is None:
            raise refusal(NOT_LOGGED_IN)
        return session

    def password_login(self, name: str, password: str, request: gr.Request | None = None) -> tuple[str, str]:
        """(token, message): a token only for the right password, tried no faster than the throttle allows."""
        if not self.access.reviewers:
            return "", NO_REVIEWERS
        name, password = str(name or "").strip(), str(password or "")
        client = request_address(request, self.trust_proxy)
        wait = self.throttle.wait(name, client)
        if wait > 0:
            log.info("login: try for %r from %s refused, %.0f s before the next", name[:MAX_NAME_CHARS], client, wait)
            return "", f"Too many wrong passwords from this address: {wait_message(wait)}."
        too_long = len(name) > MAX_NAME_CHARS or len(password) > MAX_PASSWORD_CHARS
        reviewer = None if too_long else authenticate(name, password, self.access.reviewers)
        if reviewer is None:
            wait = self.throttle.failed(name, client)
            return "", f"Wrong name or password; {wait_message(wait)}."
        self.throttle.succeeded(name, client)
        log.info("login: %r from %s", reviewer, client)
        return self.sessions.open(reviewer), f"Reviewing as **{as_text(reviewer)}**."

    def oauth_login(self, profile: gr.OAuthProfile | None) -> tuple[str, str]:
        """(token, message) for the Hugging Face account the session cookie names: a token only when the account, or
        one of its organisations, is on the allowlist."""
        if profile is None:
            return "", ""
        name, orgs = profile.username, profile_orgs(profile)
        if not hf_user_allowed(name, orgs, self.access.allowlist):
            close = near_misses(name, self.access.allowlist) if isinstance(name, str) else []
            log.info(
                "login: Hugging Face account %r (organisations %s) is not on ASR_PT_REVIEWER_ALLOWLIST%s",
                name,
                orgs,
                f"; the list has {close}, which Hugging Face spells differently" if close else "",
            )
            if not self.access.allowlist:
                return "", NO_ALLOWLIST
            return "", NOT_ON_LIST.format(name=as_text(str(name)[:MAX_NAME_CHARS]))
        log.info("login: Hugging Face account %r", name)
        return self.sessions.open(name), f"Reviewing as **{as_text(name)}** (Hugging Face)."

    def log_out(self, token: str | None) -> Session | None:
        return self.sessions.close(token)
