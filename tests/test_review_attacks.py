"""The Review and Data tabs attacked as an anonymous visitor would: raw HTTP to the queue and to /run/predict by
fn_index (whatever the API page shows), forged tokens and item keys, replayed saves, many sessions, password guessing,
and links to clips and exports. Each attack is made and seen to fail."""

from __future__ import annotations

import json
import logging
import secrets
import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import free_port

from asr_pt.models import ASRModel
from asr_pt.review.items import LeaseHeld
from asr_pt.review.reviewers import hash_password
from asr_pt.review.store import ReviewStore
from asr_pt.settings import DEFAULTS
from asr_pt.ui import Models, build_demo, launch
from asr_pt.ui.data import EXPORT_FOR_REVIEWERS, FOR_REVIEWERS
from asr_pt.ui.login import NOT_LOGGED_IN, ReviewAccess
from asr_pt.ui.review import NOT_ON_SCREEN

SESSION_CAPACITY = 20  # Gradio keeps this many sessions' state here (10,000 by default)


class Visitor:
    """Raw HTTP to a served page: any event by its function's name, with any values, under any session."""

    def __init__(self, url: str, demo):
        self.url, self.demo = url, demo
        self.http = httpx.Client(base_url=url, timeout=60)

    def fn_index(self, name: str) -> int:
        """The first event that runs the callback `name` (a button's click and a box's submit may share one)."""
        return next(i for i, block_fn in self.demo.fns.items() if getattr(block_fn.fn, "__name__", "") == name)

    def join(self, name: str, data: list, session: str | None = None, headers: dict | None = None) -> dict:
        """Through the queue, as the page does: the event's final message (`success`, `output`)."""
        session = session or secrets.token_hex(6)
        body = {"data": data, "fn_index": self.fn_index(name), "session_hash": session, "trigger_id": None}
        self.http.post("/gradio_api/queue/join", json=body, headers=headers).raise_for_status()
        with self.http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                message = json.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("msg") == "process_completed":
                    return message
        raise AssertionError(f"{name}: the stream ended without a result")

    def predict(self, name: str, data: list, session: str | None = None) -> httpx.Response:
        """Straight to /run/predict by fn_index, around the queue."""
        body = {"data": data, "fn_index": self.fn_index(name), "session_hash": session or secrets.token_hex(6)}
        return self.http.post("/gradio_api/run/predict", json=body)

    def log_in(self, name: str, password: str, session: str) -> str:
        message = self.join("log_in", [name, password], session)
        return message["output"]["data"][0]

    def error(self, name: str, data: list, session: str | None = None) -> str:
        message = self.join(name, data, session)
        assert not message["success"], f"{name} answered a caller it should have refused: {message}"
        return message["output"]["error"]

    def file(self, url: str) -> httpx.Response:
        return self.http.get(url)


def assert_queue_only(response: httpx.Response) -> None:
    """/run/predict refused a queued event, as api_open=False makes Gradio refuse it: nothing ran around the queue."""
    assert response.status_code == 404, response.text
    assert "does not accept direct HTTP POST requests" in response.json()["detail"]


PAYLOAD = '![x](http://127.0.0.1:9/x.png) <img src="http://127.0.0.1:9/y.png"> [phish](http://127.0.0.1:9/)'


def queue_items(store: ReviewStore, count: int) -> None:
    for n in range(count):
        store.add_item(
            (np.random.default_rng(n).standard_normal(16000) * 0.1).astype(np.float32),
            source_id=f"clip{n}",
            hypothesis_finetuned="o gato dorme",
            hypothesis_base=f"o gato come {'e dorme ' * (count - n)}",  # item 1 first, then 2...
            model_finetuned="ft",
            model_base="base",
            reference=PAYLOAD,
        )


@pytest.fixture(scope="module")
def models(tiny_model_dir, other_tiny_model_dir) -> Models:
    return Models(*(ASRModel(str(d), max_new_tokens=4) for d in (tiny_model_dir, other_tiny_model_dir)))


REVIEWERS = {"ana": hash_password("segredo"), "bia": hash_password("outro")}


@pytest.fixture(scope="module")
def served(tmp_path_factory, models):
    """The page on a store kept outside both the working folder and the temp folder, as `/data` is on a Space."""
    root = tmp_path_factory.mktemp("space")
    for folder in ("work", "tmp", "data"):
        (root / folder).mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root / "work")
        patch.setattr(tempfile, "tempdir", str(root / "tmp"))
        patch.delenv("GRADIO_TEMP_DIR", raising=False)
        store = ReviewStore(root / "data")
        queue_items(store, 6)
        access = ReviewAccess(oauth=False, reviewers=REVIEWERS, allowlist=set())
        demo = build_demo(models, store=store, access=access)
        _, url, _ = launch(
            demo,
            server_name="127.0.0.1",
            server_port=free_port(),
            prevent_thread_lock=True,
            state_session_capacity=SESSION_CAPACITY,
        )
        try:
            yield Visitor(url, demo), store
        finally:
            demo.close()


def test_a_visitor_gets_nothing_from_any_reviewer_event(served):
    visitor, store = served
    history = {item_id: store.history(item_id) for item_id in range(1, 7)}
    for token in ("", "forged", secrets.token_urlsafe(32), None):
        shown = visitor.join("_show_next_if_logged_in", [token])
        assert shown["success"] and "clip" not in json.dumps(shown["output"]) and PAYLOAD not in json.dumps(shown)
        for name, data in (
            ("save_item", [token, "1:0", "Forged text.", "equal"]),
            ("skip_item", [token, "1:0"]),
            ("flag_item", [token, "1:0", "spam"]),
        ):
            assert NOT_LOGGED_IN in visitor.error(name, data)
            assert_queue_only(visitor.predict(name, data))
        assert EXPORT_FOR_REVIEWERS in visitor.error("export", [token])
        for name in ("figures", "on_login"):  # the Data tab's refresh, timer, tab select; the login's change
            output = visitor.join(name, [token])["output"]["data"]
            assert output[2] == FOR_REVIEWERS and output[0]["data"] == [] and output[3]["data"] == []
            assert "clip" not in json.dumps(output) and "ana" not in json.dumps(output)
            assert_queue_only(visitor.predict(name, [token]))
    assert {item_id: store.history(item_id) for item_id in range(1, 7)} == history
    assert store.counts()["in_review"] == 0


def export_ids(visitor: Visitor, url: str) -> set[str]:
    import io

    import pyarrow.parquet as pq

    with zipfile.ZipFile(io.BytesIO(visitor.file(url).content)) as archive:
        with archive.open("data/train-00000-of-00001.parquet") as parquet:
            return set(pq.read_table(parquet, columns=["id"]).column("id").to_pylist())


def test_stored_clips_are_not_served_and_handed_out_clips_and_exports_stop_working(served):
    visitor, store = served
    item = store.get(1)
    for path in (store.audio_path(item.audio_hash), store.db_path):
        assert visitor.file(f"/gradio_api/file={path}").status_code == 403
    session = secrets.token_hex(6)
    token = visitor.log_in("bia", "outro", session)
    shown = visitor.join("_show_next_if_logged_in", [token], session)["output"]["data"]
    saved_id, clip_url = int(shown[0].split(":")[0]), shown[2]["url"]
    assert visitor.file(clip_url).content == store.audio_path(store.get(saved_id).audio_hash).read_bytes()
    assert Path(shown[2]["path"]).parent.name.startswith("asr-pt-handout-")
    shown = visitor.join("save_item", [token, shown[0], "Um gato.", "equal"], session)["output"]["data"]
    assert visitor.file(clip_url).status_code == 403  # the last clip went with the next one

    # The store lives outside the working and the temp folder (a Space's /data): the export still comes out.
    first = visitor.join("export", [token], session)["output"]["data"][0]["value"]["url"]
    assert export_ids(visitor, first) == {str(saved_id)}
    saved = store.get(saved_id)
    store.flag(saved_id, "ana", saved.version, "private data")
    assert "nothing to export yet" in visitor.error("export", [token], session)  # flagged items are never exported
    assert visitor.file(first).status_code == 403  # and the export that held it is gone
    visitor.join("log_out", [token], session)
    assert visitor.file(shown[2]["url"]).status_code == 403
    assert NOT_LOGGED_IN in visitor.error("save_item", [token, shown[0], "Late.", None], session)  # token died


def test_a_replayed_or_forged_save_is_refused_and_touches_nothing(served):
    visitor, store = served
    ana, bia = secrets.token_hex(6), secrets.token_hex(6)
    ana_token, bia_token = visitor.log_in("ana", "segredo", ana), visitor.log_in("bia", "outro", bia)
    first = visitor.join("_show_next_if_logged_in", [ana_token], ana)["output"]["data"][0]
    held_by_bia = visitor.join("_show_next_if_logged_in", [bia_token], bia)["output"]["data"][0]
    save = [ana_token, first, "O gato dorme.", "equal"]
    after = visitor.join("save_item", save, ana)["output"]["data"][0]  # the next item is on ana's screen now
    first_id, next_id = int(first.split(":")[0]), int(after.split(":")[0])
    before = {item_id: (store.get(item_id), store.history(item_id)) for item_id in range(1, 7)}
    for session, data in (
        (ana, save),  # the same request again: it names the item ana saved, not the one on her screen
        (secrets.token_hex(6), save),  # from another session
        (ana, [ana_token, f"{next_id}:7", "Forged.", None]),  # the item on screen, a version she was never shown
        (ana, [ana_token, held_by_bia, "Forged.", None]),  # bia's item
        (ana, [ana_token, "", "Forged.", None]),
        (ana, [ana_token, None, "Forged.", None]),
    ):
        assert NOT_ON_SCREEN in visitor.error("save_item", data, session)
        assert NOT_ON_SCREEN in visitor.error("flag_item", [*data[:2], "private data"], session)
    assert NOT_ON_SCREEN in visitor.error("skip_item", [ana_token, first], ana)
    assert {item_id: (store.get(item_id), store.history(item_id)) for item_id in range(1, 7)} == before
    assert store.get(first_id).text == "O gato dorme." and store.get(next_id).status == "in_review"
    bia_item = store.get(int(held_by_bia.split(":")[0]))
    with pytest.raises(LeaseHeld, match="bia"):  # the store itself refuses a save on an item someone else holds
        store.save(bia_item.id, "ana", "Forged.", bia_item.version)
    assert store.get(bia_item.id).status == "in_review" and not store.history(bia_item.id)[-1].applied
    for session, token in ((ana, ana_token), (bia, bia_token)):
        visitor.join("log_out", [token], session)


def test_a_login_survives_more_visitor_sessions_than_gradio_keeps(served):
    visitor, store = served
    reviewer = secrets.token_hex(6)
    token = visitor.log_in("ana", "segredo", reviewer)
    key = visitor.join("_show_next_if_logged_in", [token], reviewer)["output"]["data"][0]
    for _ in range(SESSION_CAPACITY + 5):  # each visitor's event makes a Gradio session
        assert FOR_REVIEWERS in visitor.join("figures", [None])["output"]["data"]
    assert reviewer not in visitor.demo.state_holder  # Gradio dropped the reviewer's session state...
    after = visitor.join("save_item", [token, key, "O gato come.", None], reviewer)  # ...and she is still logged in
    assert after["success"] and store.get(int(key.split(":")[0])).text == "O gato come."
    visitor.join("log_out", [token], reviewer)


def test_password_guessing_is_slowed_down_and_locked_out(served):
    visitor, _ = served
    guesser = secrets.token_hex(6)
    message = visitor.join("log_in", ["ana", "guess"], guesser)["output"]["data"]
    assert message[0] == "" and "Wrong name or password; try again in 1 s" in message[3]
    message = visitor.join("log_in", ["bia", "outro"], guesser)["output"]["data"]  # right, but too soon (same client)
    assert message[0] == "" and "Too many wrong passwords" in message[3] and "try again in" in message[3]
    assert_queue_only(visitor.predict("log_in", ["ana", "segredo"]))
    # How the wait grows, the lockout and its end are in test_logins.py, on a clock the test moves.


def test_a_forged_forwarded_for_is_not_the_address_without_a_proxy(served, caplog):
    """Served on 127.0.0.1 without ASR_PT_TRUST_PROXY: uvicorn would take X-Forwarded-For from a local peer as the
    client, so a fresh forged address per guess escaped the throttle and forged failures locked out someone else's."""
    visitor, _ = served
    with caplog.at_level(logging.INFO, logger="asr_pt.logins"):
        for n, (name, password) in enumerate([("ana", "guess"), ("bia", "outro")]):
            data = visitor.join("log_in", [name, password], headers={"X-Forwarded-For": f"10.1.0.{n}"})["output"]
            assert data["data"][0] == ""  # a wrong password, then a right one refused as too soon after it
    logged = [r.getMessage() for r in caplog.records if r.name == "asr_pt.logins"]
    assert len(logged) == 2 and all(line.endswith(("from 127.0.0.1", "before the next")) for line in logged)
    assert "from 127.0.0.1" in logged[-1] and "10.1.0" not in " ".join(logged)  # bia's right password: refused


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory, models):
    """The page as on a Space: behind a proxy that appends the visitor's address to X-Forwarded-For."""
    store = ReviewStore(tmp_path_factory.mktemp("proxied"))
    settings = replace(DEFAULTS, trust_proxy=True)
    access = ReviewAccess(oauth=False, reviewers=REVIEWERS, allowlist=set())
    demo = build_demo(models, settings, store=store, access=access)
    _, url, _ = launch(demo, settings, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True)
    try:
        yield Visitor(url, demo)
    finally:
        demo.close()


def test_behind_a_proxy_the_address_it_added_counts_and_a_name_is_never_locked_for_everyone(behind_proxy):
    visitor = behind_proxy

    def log_in(name: str, password: str, forwarded: str) -> list:
        return visitor.join("log_in", [name, password], headers={"X-Forwarded-For": forwarded})["output"]["data"]

    assert "Wrong name or password" in log_in("ana", "guess", "6.6.6.6, 10.2.0.1")[3]
    # What the visitor wrote before the proxy's entry is ignored: the same guesser, refused until the wait is over.
    refused = log_in("bia", "outro", "7.7.7.7, 10.2.0.1")
    assert refused[0] == "" and "Too many wrong passwords from this address" in refused[3]
    # ana herself, from her own address, gets in at once: the guesser slowed down only themselves.
    token = log_in("ana", "segredo", "10.2.0.2")[0]
    assert token  # a login's token: only the right password gets one
    visitor.join("log_out", [token])
