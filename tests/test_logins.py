"""Reviewer logins and password throttling, on a clock the tests move; files handed to a reviewer and taken back."""

from __future__ import annotations

import logging

import gradio as gr

from asr_pt.review.logins import LoginThrottle, ReviewerSessions, Session
from asr_pt.review.reviewers import hash_password
from asr_pt.ui.handouts import Handouts
from asr_pt.ui.login import NO_REVIEWERS, Login, ReviewAccess


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Request:
    """What a gr.Request says about the client."""

    def __init__(self, host: str):
        self.client = type("Client", (), {"host": host})()


def make_login(reviewers: dict[str, str], clock: Clock) -> Login:
    with gr.Blocks():
        return Login(
            ReviewAccess(oauth=False, reviewers=reviewers, allowlist=set()),
            ReviewerSessions(clock=clock),
            LoginThrottle(clock=clock),
        )


def test_each_wrong_password_doubles_the_wait_then_the_pair_is_locked_out_but_never_the_name(caplog):
    clock = Clock()
    login = make_login({"ana": hash_password("segredo")}, clock)
    guesser = Request("10.0.0.1")
    for wait in ("1 s", "2 s", "4 s", "8 s"):
        token, message = login.password_login("ana", "guess", guesser)
        assert token == "" and message == f"Wrong name or password; try again in {wait}."
        token, message = login.password_login("ana", "segredo", guesser)  # right, but before the wait is over
        assert token == "" and "Too many wrong passwords" in message
        clock.now += 60
    with caplog.at_level(logging.WARNING, logger="asr_pt.logins"):
        assert login.password_login("ana", "guess", guesser)[1] == "Wrong name or password; try again in 15 minutes."
    assert "pair 'ana' from '10.0.0.1' locked out for 900 s" in caplog.text
    # The guesser cannot keep ana out: from her own address the right password gets in at once...
    token, message = login.password_login("ana", "segredo", Request("10.0.0.2"))
    assert login.sessions.get(token).reviewer == "ana" and message == "Reviewing as **ana**."
    # ...and a wrong one there starts that address's own streak, not the guesser's.
    assert login.password_login("ana", "guess", Request("10.0.0.3"))[1].endswith("try again in 1 s.")
    clock.now += 14 * 60
    token, message = login.password_login("ana", "segredo", guesser)  # the guesser's pair is still locked
    assert token == "" and message.endswith("from this address: try again in 60 s.")
    clock.now += 61
    assert login.sessions.get(login.password_login("ana", "segredo", guesser)[0]).reviewer == "ana"


def test_a_client_trying_many_names_is_locked_out():
    clock = Clock()
    login = make_login({"ana": hash_password("segredo")}, clock)
    guesser = Request("10.0.0.9")
    for n in range(20):
        login.password_login(f"name{n}", "guess", guesser)
        clock.now += 61  # past every wait: only the count matters
    assert "try again in 14 minutes" in login.password_login("ana", "segredo", guesser)[1]  # 15 from the 20th
    assert login.password_login("ana", "segredo", Request("10.0.0.10"))[0]  # ana from elsewhere is not locked out


def test_guessed_names_cannot_grow_the_throttle_without_bound():
    throttle = LoginThrottle(max_entries=100, clock=Clock())
    for n in range(1000):
        throttle.failed(f"name{n}" + "x" * 100_000, f"10.0.{n // 256}.{n % 256}")
    assert len(throttle._failures) == 100 and max(len(key[1]) for key in throttle._failures) <= 100
    login = make_login({"ana": hash_password("segredo")}, Clock())
    assert login.password_login("ana" + " x" * 1000, "segredo", Request("10.0.0.1"))[1].startswith("Wrong name")
    assert login.password_login("ana", "segredo" * 1000, Request("10.0.0.2"))[1].startswith("Wrong name")


def test_with_no_reviewer_configured_the_page_says_how_to_add_one(caplog):
    with caplog.at_level(logging.WARNING, logger="asr_pt.logins"):
        login = make_login({}, Clock())
    assert "No reviewer is configured" in caplog.text and "hash-password NAME" in caplog.text
    assert login.password_login("ana", "segredo", Request("10.0.0.1")) == ("", NO_REVIEWERS)
    assert "ASR_PT_REVIEWERS" in NO_REVIEWERS and "Wrong name" not in NO_REVIEWERS


def test_sessions_lapse_close_and_stay_bounded():
    clock = Clock()
    sessions = ReviewerSessions(seconds=100, max_sessions=3, clock=clock)
    tokens = [sessions.open(name) for name in ("ana", "bia", "caio")]
    assert len(set(tokens)) == 3 and all(len(token) >= 40 for token in tokens)
    assert [sessions.get(token).reviewer for token in tokens] == ["ana", "bia", "caio"]
    for forged in ("", None, "ana", tokens[0][:-1] + "x", ["list"]):
        assert sessions.get(forged) is None
    sessions.get(tokens[0])  # ana is active: bia's is the oldest
    sessions.open("dani")
    assert sessions.get(tokens[1]) is None and sessions.get(tokens[0]) is not None and len(sessions) == 3
    assert sessions.close(tokens[2]).reviewer == "caio" and sessions.get(tokens[2]) is None
    clock.now += 101
    assert sessions.get(tokens[0]) is None


def test_handouts_are_replaced_taken_back_and_lapse(tmp_path):
    clock = Clock()
    handouts = Handouts(seconds=60, folder=tmp_path, clock=clock)
    ana, bia = Session("ana", 0), Session("bia", 0)
    source = tmp_path / "clip.wav"
    source.write_bytes(b"RIFF")
    first = handouts.copy(ana, "clip", source)
    second = handouts.copy(ana, "clip", source)
    export = handouts.give(ana, "export", "export.zip", lambda path: path.write_bytes(b"zip"), seconds=10)
    theirs = handouts.copy(bia, "clip", source)
    assert first != second and not_there(first) and all(there(p) for p in (second, export, theirs))
    clock.now += 11
    assert handouts.sweep() == 1 and not_there(export) and there(second)
    handouts.take_back(ana)
    assert not_there(second) and there(theirs) and ana.files == {}
    clock.now += 60
    handouts.sweep()
    assert not_there(theirs)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.wav"]  # the random folders went too


def there(path: str) -> bool:
    from pathlib import Path

    return Path(path).is_file()


def not_there(path: str) -> bool:
    return not there(path)
