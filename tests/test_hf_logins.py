"""Hugging Face logins as a Space serves them, attacked over raw HTTP: gradio's real OAuth routes and session
middleware run, and the test stands in for Hugging Face's login callback by signing the session cookie with the
test's client secret (what the callback stores after a real login). Only the accounts and organisations on the
allowlist may review; everyone else, however their name is spelt, gets nothing from the Review, Data and Explorer
tabs, by the page's events or by fn_index."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import secrets
import time
import zipfile

import gradio as gr
import gradio.oauth
import pytest
from conftest import free_port
from itsdangerous import TimestampSigner
from test_review_attacks import Visitor, assert_queue_only, queue_items

from asr_pt.models import ASRModel
from asr_pt.review.logins import LoginThrottle, ReviewerSessions
from asr_pt.review.store import ReviewStore
from asr_pt.settings import Settings
from asr_pt.ui import Models, build_demo, launch
from asr_pt.ui.data import EXPORT_FOR_REVIEWERS, FOR_REVIEWERS
from asr_pt.ui.login import NO_ALLOWLIST, NOT_LOGGED_IN, Login, ReviewAccess

CLIENT_SECRET = secrets.token_hex(16)  # the Space's OAUTH_CLIENT_SECRET, known here only
SPACE = {"SPACE_ID": "owner/asr-pt", "SYSTEM": "spaces"}


def userinfo(name: str, orgs: tuple[str, ...] = ()) -> dict:
    """What Hugging Face's userinfo holds for an account (the fields gradio and huggingface_hub read)."""
    return {
        "sub": hashlib.sha1(name.encode()).hexdigest()[:24],
        "name": name.title(),
        "preferred_username": name,
        "profile": f"https://huggingface.co/{name}",
        "picture": "",
        "orgs": [{"sub": org, "name": org.title(), "preferred_username": org, "isEnterprise": False} for org in orgs],
    }


def session_cookie(info: dict, secret: str = CLIENT_SECRET) -> str:
    """The `session` cookie gradio's login callback leaves after a real login, signed as Starlette's
    SessionMiddleware signs it with the key gradio derives from the client secret."""
    key = hashlib.sha256((secret + "-v4").encode()).hexdigest()
    oauth_info = {"access_token": "hf_oauth_x", "scope": "openid profile", "expires_at": time.time() + 3600}
    payload = base64.b64encode(json.dumps({"oauth_info": {**oauth_info, "userinfo": info}}).encode())
    return TimestampSigner(key).sign(payload).decode()


class Account(Visitor):
    """A browser holding a Hugging Face session cookie: every request carries it."""

    def __init__(self, url: str, demo, cookie: str | None):
        super().__init__(url, demo)
        if cookie is not None:
            self.http.headers["cookie"] = f"session={cookie}"

    def log_in_hf(self, session: str) -> list:
        """The page's load event that turns the session's profile into a reviewer token (or a refusal)."""
        return self.join("log_in_hf", [], session)["output"]["data"]


@pytest.fixture(scope="module")
def space(tmp_path_factory, tiny_model_dir, other_tiny_model_dir):
    """The page as a Space serves it: gradio's real OAuth routes (SYSTEM=spaces), reviewers from the allowlist."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SPACE.items():
            patch.setenv(name, value)  # gradio reads these for its own routes
        for name, value in {
            "OAUTH_CLIENT_ID": "test-client",
            "OAUTH_CLIENT_SECRET": CLIENT_SECRET,
            "OAUTH_SCOPES": "openid profile",
            "OPENID_PROVIDER_URL": "http://127.0.0.1:9",  # never reached: the test plays the callback
        }.items():
            patch.setattr(gradio.oauth, name, value)  # gradio read them from the environment at import
        settings = Settings.from_env({**SPACE, "ASR_PT_REVIEWER_ALLOWLIST": "ana,org:lab"})
        assert settings.oauth
        store = ReviewStore(tmp_path_factory.mktemp("store"))
        queue_items(store, 4)
        models = Models(*(ASRModel(str(d), max_new_tokens=4) for d in (tiny_model_dir, other_tiny_model_dir)))
        demo = build_demo(models, settings, store=store)
        _, url, _ = launch(demo, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True)
        try:
            yield url, demo, store
        finally:
            demo.close()


def reviewer_events_refused(account: Account, token: str, store: ReviewStore) -> None:
    """Every reviewer event of the Review, Data and Explorer tabs, through the queue and around it, with `token`."""
    shown = account.join("_show_next_if_logged_in", [token])
    assert shown["success"] and "clip" not in json.dumps(shown["output"])
    for name, data in (
        ("save_item", [token, "1:0", "Correção da mallory.", "equal"]),
        ("skip_item", [token, "1:0"]),
        ("flag_item", [token, "1:0", "spam"]),
        ("folders", [token]),
    ):
        assert NOT_LOGGED_IN in account.error(name, data)
        assert_queue_only(account.predict(name, data))
    assert EXPORT_FOR_REVIEWERS in account.error("export", [token])
    figures = account.join("figures", [token])["output"]["data"]
    assert figures[2] == FOR_REVIEWERS and "clip" not in json.dumps(figures)


def test_only_listed_accounts_and_organisation_members_may_review(space):
    url, demo, store = space
    before = {item_id: (store.get(item_id), store.history(item_id)) for item_id in range(1, 5)}
    refused = [
        ("mallory", ()),  # a real account, not invited
        ("Ana", ()),  # ana's name in another case
        ("ANA", ()),
        ("\u0430na", ()),  # Cyrillic "а"
        ("\uff41\uff4e\uff41", ()),  # full-width "ana": NFKC would make it "ana"
        ("ana\u200b", ()),  # a zero-width space after it
        ("mallory", ("Lab", "l\u0430b", "other")),  # organisations it belongs to, none of them "lab"
    ]
    for name, orgs in refused:
        account = Account(url, demo, session_cookie(userinfo(name, orgs)))
        session = secrets.token_hex(6)
        token, *_, message, who = account.log_in_hf(session)
        assert token == "" and who == "" and "not on this Space's reviewer list" in message, name
        reviewer_events_refused(account, token, store)
        for forged in ("forged", secrets.token_urlsafe(32)):
            reviewer_events_refused(account, forged, store)
    # A cookie naming ana, signed with any key but the Space's, is no login at all: the page stays as it is.
    forged = Account(url, demo, session_cookie(userinfo("ana"), secret="guessed"))
    assert forged.log_in_hf(secrets.token_hex(6)) == [{"__type__": "update"}] * 5
    assert {item_id: (store.get(item_id), store.history(item_id)) for item_id in range(1, 5)} == before

    for name, orgs in (("ana", ()), ("caio", ("other", "lab"))):  # listed, and a member of a listed organisation
        account = Account(url, demo, session_cookie(userinfo(name, orgs)))
        session = secrets.token_hex(6)
        token, *_, who = account.log_in_hf(session)
        assert token and f"Reviewing as **{name}** (Hugging Face)" in who
        key = account.join("_show_next_if_logged_in", [token], session)["output"]["data"][0]
        account.join("save_item", [token, key, f"Texto de {name}.", "equal"], session)
        assert store.get(int(key.split(":")[0])).reviewer == name


def test_an_uninvited_account_gets_no_correction_into_the_export(space):
    """The probe that found the hole: "mallory" logged in with Hugging Face, reviewed queued clips, and her saved
    "correction" reached the export's sft.jsonl."""
    url, demo, store = space
    mallory = Account(url, demo, session_cookie(userinfo("mallory")))
    session = secrets.token_hex(6)
    token = mallory.log_in_hf(session)[0]
    for forged in (token, "", "forged"):
        mallory.join("_show_next_if_logged_in", [forged], session)
        for item_id in range(1, 5):
            data = [forged, f"{item_id}:0", "Mallory esteve aqui.", "both_wrong"]
            assert NOT_LOGGED_IN in mallory.error("save_item", data, session)
    assert all("Mallory" not in (revision.text or "") for i in range(1, 5) for revision in store.history(i))

    ana = Account(url, demo, session_cookie(userinfo("ana")))
    session = secrets.token_hex(6)
    ana_token = ana.log_in_hf(session)[0]
    key = ana.join("_show_next_if_logged_in", [ana_token], session)["output"]["data"][0]
    ana.join("save_item", [ana_token, key, "A ana corrigiu isto.", "equal"], session)
    archive = ana.file(ana.join("export", [ana_token], session)["output"]["data"][0]["value"]["url"]).content
    with zipfile.ZipFile(io.BytesIO(archive)) as exported:
        sft = exported.read("sft.jsonl").decode()
    assert "A ana corrigiu isto." in sft and "Mallory" not in sft and "mallory" not in sft


def test_with_an_empty_allowlist_nobody_reviews_and_the_page_and_log_say_how_to_add_names(caplog):
    caplog.set_level(logging.INFO, logger="asr_pt.logins")
    access = ReviewAccess.from_settings(Settings.from_env({**SPACE, "ASR_PT_REVIEWER_ALLOWLIST": ""}))
    assert access.oauth and not access.allowlist
    with gr.Blocks() as page:
        login = Login(access, ReviewerSessions(), LoginThrottle())
    shown = [block.value for block in page.blocks.values() if isinstance(block, gr.Markdown)]
    assert NO_ALLOWLIST in shown and "ASR_PT_REVIEWER_ALLOWLIST" in NO_ALLOWLIST and "org:NAME" in NO_ALLOWLIST
    assert NO_ALLOWLIST in caplog.text
    for name in ("ana", "owner"):
        assert login.oauth_login(gr.OAuthProfile(userinfo(name))) == ("", NO_ALLOWLIST)
    assert len(login.sessions) == 0
