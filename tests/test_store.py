import collections
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from asr_pt.corpora import read_examples
from asr_pt.review.items import SaveConflict, StoreError
from asr_pt.review.scoreboard import scoreboard
from asr_pt.review.store import ReviewStore, disagreement

REPO = Path(__file__).resolve().parent.parent


def noise(seed: int, seconds: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32)


def add(store: ReviewStore, n: int, finetuned: str = "o gato dorme", base: str = "o gato dorme", **item) -> int:
    """Queue a clip of noise numbered n with the given hypotheses."""
    return store.add_item(
        noise(n),
        source_id=f"clip{n}",
        hypothesis_finetuned=finetuned,
        hypothesis_base=base,
        model_finetuned="ft",
        model_base="base",
        **item,
    )


def test_eight_threads_of_saves_lose_nothing(tmp_path):
    store = ReviewStore(tmp_path)
    ids = [add(store, n) for n in range(6)]
    outcomes = []  # (item id, text, applied, the other reviewer's text when refused)
    lock = threading.Lock()

    def reviewer(number: int) -> None:
        rng = np.random.default_rng(number)
        for attempt in range(200):
            item_id = int(rng.choice(ids))
            version = store.get(item_id).version
            time.sleep(0.0005)  # a reviewer reads before typing: others save meanwhile
            text = f"Reviewer {number} attempt {attempt}."
            try:
                store.save(item_id, f"r{number}", text, version)
                outcome = (item_id, text, True, None)
            except SaveConflict as conflict:
                outcome = (item_id, text, False, conflict.current.text)
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=reviewer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(outcomes) == 1600
    refused = [o for o in outcomes if not o[2]]
    assert refused and len(refused) < 1600  # both outcomes happened
    revisions = {item_id: store.history(item_id) for item_id in ids}
    recorded = {(r.item_id, r.text, bool(r.applied)) for history in revisions.values() for r in history}
    assert sum(len(h) for h in revisions.values()) == 1600
    assert recorded == {o[:3] for o in outcomes}  # every attempt is in the history exactly as it ended
    for item_id, history in revisions.items():
        applied = [r for r in history if r.applied]
        assert [r.base_version for r in applied] == list(range(len(applied)))  # no save overwrote an unseen one
        item = store.get(item_id)
        assert item.version == len(applied) and item.text == applied[-1].text
    applied_texts = {r.text for history in revisions.values() for r in history if r.applied}
    assert all(other in applied_texts for *_, other in refused)  # refusals showed a real save of someone else
    assert store.integrity_check() == "ok"


WRITER = """
import sys
from asr_pt.review.store import ReviewStore
store = ReviewStore(sys.argv[1])
ids = [int(i) for i in sys.argv[2].split(",")]
count = 0
while True:
    for item_id in ids:
        item = store.get(item_id)
        store.save(item_id, "writer", f"Save number {count}.", item.version)
        print(item_id, count, flush=True)  # acknowledged only after the commit returned
        count += 1
"""


def test_killed_writer_leaves_a_sound_database_with_every_acknowledged_save(tmp_path):
    store = ReviewStore(tmp_path)
    ids = [add(store, n) for n in range(3)]
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), ",".join(map(str, ids))],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    acknowledged = [writer.stdout.readline().split() for _ in range(60)]
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    acknowledged += [line.split() for line in writer.stdout.read().splitlines()]  # acks still in the pipe

    reopened = ReviewStore(tmp_path)
    assert reopened.integrity_check() == "ok"
    saved = {(r.item_id, r.text) for item_id in ids for r in reopened.history(item_id) if r.applied}
    assert {(int(item_id), f"Save number {count}.") for item_id, count in acknowledged} <= saved
    assert len(saved) >= len(acknowledged) >= 60


def test_leases_expire_and_a_reload_gets_the_same_item(tmp_path):
    now = [1000.0]
    store = ReviewStore(tmp_path, lease_seconds=300, clock=lambda: now[0])
    first = add(store, 1, base="um gato")
    second = add(store, 2)
    assert store.claim_next("ana").id == first
    assert store.claim_next("ana").id == first  # ana reloaded the page
    assert store.claim_next("bia").id == second  # not ana's item while her lease holds
    assert store.counts()["in_review"] == 2
    now[0] += 299
    assert store.counts()["in_review"] == 2 and store.claim_next("caio") is None  # both still held at 299 s
    now[0] += 1  # the leases lapse at 300 s
    assert store.counts() == {"pending": 2, "in_review": 0, "corrected": 0, "skipped": 0, "flagged": 0}
    assert store.claim_next("caio").id == first  # ana walked away: her item came back
    assert store.claim_next("dani").id == second


def test_queue_puts_disagreement_first_then_oldest_and_skipped_last(tmp_path):
    store = ReviewStore(tmp_path)
    agree_old = add(store, 1)
    differ_little = add(store, 2, base="o gato dorme bem")
    agree_new = add(store, 3)
    differ_much = add(store, 4, base="um cão corre")
    assert store.get(differ_much).disagreement == disagreement("o gato dorme", "um cão corre") == 100.0
    claimed = []
    while (item := store.claim_next("ana")) is not None:
        claimed.append(item.id)
        if item.id == differ_much and len(claimed) == 1:
            store.skip(item.id, "ana", item.version)
        else:
            store.save(item.id, "ana", "O gato dorme.", item.version)
    assert claimed == [differ_much, differ_little, agree_old, agree_new, differ_much]


def test_skip_and_flag(tmp_path):
    store = ReviewStore(tmp_path)
    item = store.get(add(store, 1))
    skipped = store.skip(item.id, "ana", item.version)
    assert (skipped.status, skipped.version) == ("skipped", 1)
    with pytest.raises(StoreError, match="reason"):
        store.flag(item.id, "ana", skipped.version, "  ")
    flagged = store.flag(item.id, "ana", skipped.version, "someone says a phone number")
    assert (flagged.status, flagged.flag_reason) == ("flagged", "someone says a phone number")
    assert store.claim_next("bia") is None  # flagged items leave the queue
    assert [(r.action, r.applied) for r in store.history(item.id)] == [("skip", 1), ("flag", 1)]
    with pytest.raises(SaveConflict, match="ana \\(flag\\)"):
        store.skip(item.id, "bia", item.version)  # a stale skip cannot undo the flag


def test_verdicts_and_written_form(tmp_path):
    store = ReviewStore(tmp_path)
    item = store.get(add(store, 1))
    with pytest.raises(StoreError, match="unknown verdict"):
        store.save(item.id, "ana", "olá", item.version, verdict="great")
    with pytest.raises(StoreError, match="reviewer"):
        store.save(item.id, " ", "olá", item.version)
    saved = store.save(item.id, "ana", "  olá mundo ", item.version, verdict="base_better", seconds=4.5)
    assert (saved.status, saved.text, saved.verdict, saved.reviewer, saved.seconds) == (
        "corrected",
        "Olá mundo.",
        "base_better",
        "ana",
        4.5,
    )
    assert saved.corrected_at is not None and saved.version == 1


def test_two_independent_reviews_record_their_agreement(tmp_path):
    store = ReviewStore(tmp_path, reviews_needed=2)
    item_id = add(store, 1)
    item = store.claim_next("ana")
    after_one = store.save(item_id, "ana", "O gato dorme na cama.", item.version, verdict="equal")
    assert (after_one.status, after_one.reviews, after_one.agreement_wer) == ("pending", 1, None)
    assert store.claim_next("ana") is None  # the second review must be someone else's
    item = store.claim_next("bia")
    assert item.id == item_id
    after_two = store.save(item_id, "bia", "O gato dorme na casa.", item.version, verdict="finetuned_better")
    assert (after_two.status, after_two.reviews, after_two.agreement_wer) == ("corrected", 2, 20.0)
    assert store.item_reviews(item_id) == [
        ("ana", "O gato dorme na cama.", "equal"),
        ("bia", "O gato dorme na casa.", "finetuned_better"),
    ]


def test_history_is_append_only_and_schema_is_versioned(tmp_path):
    store = ReviewStore(tmp_path)
    item = store.get(add(store, 1))
    store.save(item.id, "ana", "Olá.", item.version)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store._db.execute("UPDATE revisions SET text = 'gone'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store._db.execute("DELETE FROM revisions")
    assert ReviewStore(tmp_path).get(item.id).text == "Olá."  # reopening migrates nothing and loses nothing
    store._db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer than this code"):
        ReviewStore(tmp_path)
    with pytest.raises(StoreError, match="no review store"):
        ReviewStore(tmp_path / "nowhere", create=False)


def test_same_clip_is_stored_once_and_queued_once_per_source(tmp_path):
    store = ReviewStore(tmp_path)
    ids = {add(store, 1), add(store, 1)}
    assert len(ids) == 1 and len(list((tmp_path / "audio").glob("*.wav"))) == 1


def test_store_scheme_reads_corrected_unflagged_items(tmp_path):
    store = ReviewStore(tmp_path)
    kept, flagged, pending = (store.get(add(store, n, source_split="test" if n == 1 else "")) for n in (1, 2, 3))
    store.save(kept.id, "ana", "Fica.", kept.version)
    store.flag(flagged.id, "ana", flagged.version, "no speech")
    [example] = read_examples(f"mine=store:{tmp_path}")
    assert (example.id, example.text, example.corpus, example.split) == (str(kept.id), "Fica.", "mine", "test")
    assert Path(example.audio) == store.audio_path(kept.audio_hash) and example.is_test
    assert collections.Counter(store.counts()) == collections.Counter(
        {"pending": 1, "corrected": 1, "flagged": 1, "in_review": 0, "skipped": 0}
    )


def test_scoreboard_scores_both_models_against_the_corrections(tmp_path):
    store = ReviewStore(tmp_path, reviews_needed=1)
    assert scoreboard(store).items == 0 and scoreboard(store).rows() == []
    first = store.get(add(store, 1, finetuned="O gato dorme.", base="o gato come"))
    second = store.get(add(store, 2, finetuned="A casa é azul.", base="A casa é azul."))
    store.save(first.id, "ana", "O gato dorme.", first.version, verdict="finetuned_better")
    store.save(second.id, "ana", "A casa é azul.", second.version, verdict="equal")
    board = scoreboard(store)
    assert board.items == 2 and board.verdicts == {
        "finetuned_better": 1,
        "base_better": 0,
        "equal": 1,
        "both_wrong": 0,
    }
    assert board.scores["written"]["finetuned"].wer == 0.0
    assert board.scores["written"]["base"].wer == pytest.approx(100 * 2 / 7)  # "o" for "O", "come" for "dorme."
    assert board.scores["normalized"]["base"].wer == pytest.approx(100 * 1 / 7)
    assert ["normalized", "base", 14.29, round(board.scores["normalized"]["base"].cer, 2)] in board.rows()
    assert (board.double_reviewed, board.mean_agreement_wer) == (0, None)


def test_a_failed_commit_is_rolled_back_and_the_store_keeps_working(tmp_path):
    store = ReviewStore(tmp_path)
    # A deferred foreign-key violation is only caught by COMMIT, which then fails and (in SQLite) leaves the
    # transaction open, as a COMMIT that fails for a full disk does.
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        with store._write() as db:
            db.execute("PRAGMA defer_foreign_keys = ON")
            db.execute(
                "INSERT INTO revisions (item_id, action, reviewer, base_version, applied, created_at)"
                " VALUES (999, 'skip', 'ana', 0, 1, 0)"
            )
    assert not store._db.in_transaction
    item = store.get(add(store, 1))  # not "cannot start a transaction within a transaction"
    assert store.save(item.id, "ana", "olá", item.version).text == "Olá."
    assert store.history(999) == []


def test_release_takes_the_reviewer_name_as_every_other_method_does(tmp_path):
    store = ReviewStore(tmp_path)
    item = store.get(add(store, 1))
    assert store.claim_next("ana").id == item.id
    store.release(item.id, " ana ")
    assert store.get(item.id).status == "pending"
    with pytest.raises(StoreError, match="reviewer name"):
        store.release(item.id, "  ")


def test_word_error_rates_are_computed_outside_the_write_lock(tmp_path, monkeypatch):
    import asr_pt.review.store

    store = ReviewStore(tmp_path, reviews_needed=2)
    calls = []

    def score_pair(*args):
        calls.append(store._db.in_transaction)
        return real(*args)

    real = asr_pt.review.store.score_pair
    monkeypatch.setattr(asr_pt.review.store, "score_pair", score_pair)
    item = store.get(add(store, 1, finetuned="o gato dorme", base="o gato come"))
    store.save(item.id, "ana", "O gato dorme na cama.", item.version)
    item = store.save(item.id, "bia", "O gato dorme na casa.", store.get(item.id).version)
    assert (item.disagreement, item.agreement_wer) == (pytest.approx(100 / 3), 20.0)
    assert len(calls) == 2 and not any(calls)  # one disagreement, one agreement; neither while holding the lock
