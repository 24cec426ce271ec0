"""The review store: clips, both models' hypotheses and reviewers' corrections in SQLite, with nothing ever lost.

A data folder (`ASR_PT_DATA_DIR`, default `./data`) holds `review.sqlite` and `audio/<content hash>.wav` (16 kHz).
Every save, skip and flag appends a row to `revisions`, refused ones included, and triggers make that table
append-only. Writes run in `BEGIN IMMEDIATE` transactions in WAL mode with `synchronous=FULL`, so a save that returned
survives a killed process. Each thread gets its own connection.

Concurrency is optimistic: a reviewer claims an item with a lease (so two reviewers are not shown the same clip) and
saves against the version they started from; if anyone saved in between, the save is refused with a `SaveConflict`
that carries the other reviewer's text, and the refused text is kept in the history all the same.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import numpy as np

from asr_pt.audio import content_hash, duration, write_wav
from asr_pt.corpora import SCHEMES, CorpusError, Example, Spec
from asr_pt.metrics import score_pair
from asr_pt.review.items import STATUSES, VERDICTS, Item, LeaseHeld, NewItem, Revision, SaveConflict, StoreError
from asr_pt.review.schema import MIGRATIONS, SCHEMA_VERSION, statements
from asr_pt.settings import DEFAULTS, from_environment
from asr_pt.text import written_form

DB_NAME = "review.sqlite"
QUEUES = ("pending", "skipped")  # claimed in this order: skipped items come back after the rest


def default_data_dir() -> Path:
    """The data folder the settings name: `store:` SPECs with no folder read it."""
    return from_environment().data_dir


def disagreement(hypothesis_finetuned: str, hypothesis_base: str) -> float:
    """WER (%) of the base hypothesis against the fine-tuned one, words only: how much a reviewer is needed."""
    if not hypothesis_finetuned.strip() and not hypothesis_base.strip():
        return 0.0
    return score_pair(hypothesis_finetuned, hypothesis_base, "normalized").wer


def _row_to(cls, row: sqlite3.Row | None):
    return None if row is None else cls(**{f.name: row[f.name] for f in fields(cls)})


class ReviewStore:
    """One data folder's items, safe to share between threads and processes."""

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        lease_seconds: float = DEFAULTS.lease_seconds,
        reviews_needed: int = DEFAULTS.reviews_needed,
        create: bool = True,
        clock: Callable[[], float] = time.time,
    ):
        """`clock`: the wall clock (seconds) leases, corrections and revisions are timed by; tests move their own."""
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.db_path = self.data_dir / DB_NAME
        self.audio_dir = self.data_dir / "audio"
        if not create and not self.db_path.exists():
            raise StoreError(f"there is no review store in {self.data_dir} (no {DB_NAME})")
        if reviews_needed < 1:
            raise StoreError(f"reviews_needed must be at least 1, not {reviews_needed}")
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.reviews_needed = reviews_needed
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._migrate()

    # -- connections and transactions -------------------------------------------------------------------------------

    @property
    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.db_path, isolation_level=None, timeout=30.0)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a save that returned is on disk, even if the machine dies
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A transaction that takes the write lock up front, so concurrent writers queue instead of deadlocking."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            # A COMMIT that fails (disk full, a deferred constraint) leaves the transaction open: end it, or every
            # later write on this thread's connection fails with "cannot start a transaction within a transaction".
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close this thread's connection (other threads' close when they end)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.db_path} has schema version {version}, newer than this code's {SCHEMA_VERSION}: upgrade asr-pt"
            )
        for number in range(version, SCHEMA_VERSION):
            with self._write() as db:
                if db.execute("PRAGMA user_version").fetchone()[0] != number:
                    continue  # another process migrated it meanwhile
                for statement in statements(MIGRATIONS[number]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")

    @property
    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def integrity_check(self) -> str:
        """SQLite's own verdict on the file: "ok" when sound."""
        return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    # -- adding items -----------------------------------------------------------------------------------------------

    def audio_path(self, audio_hash: str) -> Path:
        return self.audio_dir / f"{audio_hash}.wav"

    def put_audio(self, samples: np.ndarray) -> tuple[str, float]:
        """Keep 16 kHz samples as `audio/<content hash>.wav` (once per distinct clip); returns (hash, seconds)."""
        audio_hash = content_hash(samples)
        path = self.audio_path(audio_hash)
        if not path.exists():
            partial = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.partial.wav")
            write_wav(partial, samples)
            os.replace(partial, path)  # atomic: a reader never sees half a file
        return audio_hash, duration(samples)

    def add_items(self, items: Iterable[NewItem]) -> list[int]:
        """Queue items in one transaction; an item whose (source, source_id) is queued already keeps its old id."""
        now = self.clock()
        ids = []
        items = list(items)
        scores = [disagreement(item.hypothesis_finetuned, item.hypothesis_base) for item in items]  # before the lock
        with self._write() as db:
            for item, score in zip(items, scores, strict=True):
                row = db.execute(
                    "INSERT INTO items (audio_hash, duration, source, source_id, source_split, reference,"
                    " hypothesis_finetuned, hypothesis_base, model_finetuned, model_base, disagreement, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, source_id) DO NOTHING"
                    " RETURNING id",
                    (
                        item.audio_hash,
                        item.duration,
                        item.source,
                        item.source_id,
                        item.source_split or "",
                        item.reference or "",
                        item.hypothesis_finetuned,
                        item.hypothesis_base,
                        item.model_finetuned,
                        item.model_base,
                        score,
                        now,
                    ),
                ).fetchone()
                if row is None:
                    row = db.execute(
                        "SELECT id FROM items WHERE source = ? AND source_id = ?", (item.source, item.source_id)
                    ).fetchone()
                ids.append(row[0])
        return ids

    def add_item(self, samples: np.ndarray, **item) -> int:
        """Store a clip and queue it; `item` holds the other `NewItem` fields (the demo's source_id is the hash)."""
        audio_hash, seconds = self.put_audio(samples)
        item.setdefault("source", "demo")
        item.setdefault("source_id", audio_hash)
        return self.add_items([NewItem(audio_hash=audio_hash, duration=seconds, **item)])[0]

    def has_item(self, source: str, source_id: str) -> bool:
        query = "SELECT 1 FROM items WHERE source = ? AND source_id = ?"
        return self._db.execute(query, (source, source_id)).fetchone() is not None

    # -- reading ----------------------------------------------------------------------------------------------------

    def get(self, item_id: int) -> Item:
        item = _row_to(Item, self._db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone())
        if item is None:
            raise StoreError(f"there is no item {item_id}")
        return item

    def history(self, item_id: int) -> list[Revision]:
        rows = self._db.execute("SELECT * FROM revisions WHERE item_id = ? ORDER BY id", (item_id,))
        return [_row_to(Revision, row) for row in rows]

    def item_reviews(self, item_id: int) -> list[tuple[str, str, str | None]]:
        """(reviewer, text, verdict) of each independent review, oldest first."""
        rows = self._db.execute(
            "SELECT reviewer, text, verdict FROM reviews WHERE item_id = ? ORDER BY created_at, rowid", (item_id,)
        )
        return [tuple(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """Items per status; a claimed item whose lease lapsed counts where it will return."""
        counts = dict.fromkeys(STATUSES, 0)
        rows = self._db.execute(
            "SELECT CASE WHEN status = 'in_review' AND lease_expires <= ? THEN queue ELSE status END, count(*)"
            " FROM items GROUP BY 1",
            (self.clock(),),
        )
        counts.update(dict(rows.fetchall()))
        return counts

    def corrected(self, limit: int | None = None, newest_first: bool = False) -> list[Item]:
        """Corrected items (flagged ones are not), in the order they were queued or newest correction first."""
        order = "corrected_at DESC" if newest_first else "id"
        query = f"SELECT * FROM items WHERE status = 'corrected' ORDER BY {order} LIMIT ?"
        return [_row_to(Item, row) for row in self._db.execute(query, (-1 if limit is None else limit,))]

    def last_change(self) -> int:
        """Grows with every applied change and every added item, so a copy can tell it is stale."""
        row = self._db.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM revisions) + (SELECT coalesce(max(id), 0) FROM items)"
        ).fetchone()
        return row[0]

    # -- the queue --------------------------------------------------------------------------------------------------

    def claim_next(self, reviewer: str) -> Item | None:
        """The most useful item this reviewer has not reviewed yet, leased to them; None when the queue is empty.

        A reviewer who still holds a lease gets that item back (a reloaded page). Lapsed leases return their items
        to the queue first. Order: biggest disagreement between the hypotheses, then oldest; skipped items last.
        """
        reviewer = _reviewer_name(reviewer)
        now = self.clock()
        with self._write() as db:
            held = db.execute(
                "SELECT id FROM items WHERE status = 'in_review' AND lease_owner = ? AND lease_expires > ?"
                " ORDER BY id LIMIT 1",
                (reviewer, now),
            ).fetchone()
            if held is None:
                db.execute(
                    "UPDATE items SET status = queue, lease_owner = NULL, lease_expires = NULL, claimed_at = NULL"
                    " WHERE status = 'in_review' AND lease_expires <= ?",
                    (now,),
                )
                for queue in QUEUES:
                    held = db.execute(
                        "SELECT id FROM items WHERE status = ? AND NOT EXISTS"
                        " (SELECT 1 FROM reviews WHERE item_id = items.id AND reviewer = ?)"
                        " ORDER BY disagreement DESC, id LIMIT 1",
                        (queue, reviewer),
                    ).fetchone()
                    if held is not None:
                        break
                else:
                    return None
            db.execute(
                "UPDATE items SET queue = CASE WHEN status = 'in_review' THEN queue ELSE status END,"
                " status = 'in_review', lease_owner = ?, lease_expires = ?,"
                " claimed_at = CASE WHEN lease_owner = ? THEN claimed_at ELSE ? END WHERE id = ?",
                (reviewer, now + self.lease_seconds, reviewer, now, held[0]),
            )
            return _row_to(Item, db.execute("SELECT * FROM items WHERE id = ?", (held[0],)).fetchone())

    def release(self, item_id: int, reviewer: str) -> None:
        """Give a claimed item back to the queue now (a reviewer who logs out)."""
        reviewer = _reviewer_name(reviewer)
        with self._write() as db:
            db.execute(
                "UPDATE items SET status = queue, lease_owner = NULL, lease_expires = NULL, claimed_at = NULL"
                " WHERE id = ? AND status = 'in_review' AND lease_owner = ?",
                (item_id, reviewer),
            )

    # -- saving -----------------------------------------------------------------------------------------------------

    def save(
        self,
        item_id: int,
        reviewer: str,
        text: str,
        base_version: int,
        verdict: str | None = None,
        seconds: float | None = None,
    ) -> Item:
        """Record a correction made from `base_version`; raises SaveConflict if the item changed since, and
        LeaseHeld if another reviewer holds it now (either way the text is kept in the history, marked refused).

        The text is kept in its written form (capital first letter, final punctuation), as the model writes and as
        training references are. With `reviews_needed` > 1 the item returns to the queue for other reviewers until
        enough have saved, and the agreement between their corrections is recorded.
        """
        if verdict is not None and verdict not in VERDICTS:
            raise StoreError(f"unknown verdict {verdict!r}; expected one of {', '.join(VERDICTS)}")
        text = written_form(text)
        return self._apply(item_id, reviewer, "save", base_version, text=text, verdict=verdict, seconds=seconds)

    def skip(self, item_id: int, reviewer: str, base_version: int) -> Item:
        """Put the item behind every pending one; it comes back when the rest are done."""
        return self._apply(item_id, reviewer, "skip", base_version)

    def flag(self, item_id: int, reviewer: str, base_version: int, reason: str) -> Item:
        """Take the item out of the queue and out of every export, with a reason (unusable audio, private data...)."""
        if not (reason or "").strip():
            raise StoreError("say why the item is flagged (a reason is required)")
        return self._apply(item_id, reviewer, "flag", base_version, reason=reason.strip())

    def _apply(
        self,
        item_id: int,
        reviewer: str,
        action: str,
        base_version: int,
        *,
        text: str | None = None,
        verdict: str | None = None,
        reason: str | None = None,
        seconds: float | None = None,
    ) -> Item:
        reviewer = _reviewer_name(reviewer)
        # The agreement between reviewers (jiwer) is worked out before taking the write lock, from the reviews as
        # they stand now, and only recomputed under the lock if another review landed meanwhile.
        expected = None
        if action == "save":
            texts = self._review_texts(self._db, item_id, reviewer, text)
            expected = (texts, agreement(texts))
        now = self.clock()
        with self._write() as db:
            item = _row_to(Item, db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone())
            if item is None:
                raise StoreError(f"there is no item {item_id}")
            if seconds is None and item.lease_owner == reviewer and item.claimed_at is not None:
                seconds = now - item.claimed_at
            held_by_other = item.status == "in_review" and item.lease_owner != reviewer and item.lease_expires > now
            applied = item.version == base_version and not held_by_other
            db.execute(
                "INSERT INTO revisions (item_id, action, reviewer, base_version, applied, text, verdict, reason,"
                " seconds, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (item_id, action, reviewer, base_version, int(applied), text, verdict, reason, seconds, now),
            )
            if held_by_other:
                conflict = LeaseHeld(item_id, item.lease_owner)
            elif not applied:
                last = _row_to(
                    Revision,
                    db.execute(
                        "SELECT * FROM revisions WHERE item_id = ? AND applied = 1 ORDER BY id DESC LIMIT 1", (item_id,)
                    ).fetchone(),
                )
                conflict = SaveConflict(item_id, base_version, item, last)
            else:
                conflict = None
                self._update_item(db, item, reviewer, action, text, verdict, reason, seconds, now, expected)
                item = _row_to(Item, db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone())
        if conflict is not None:
            raise conflict  # after the commit: the refused attempt stays in the history
        return item

    @staticmethod
    def _review_texts(db: sqlite3.Connection, item_id: int, reviewer: str, text: str) -> list[str]:
        """Every review's text once this reviewer's is saved, oldest review first (a re-save keeps its place)."""
        rows = db.execute(
            "SELECT reviewer, text FROM reviews WHERE item_id = ? ORDER BY created_at, rowid", (item_id,)
        ).fetchall()
        texts = [text if row[0] == reviewer else row[1] for row in rows]
        return texts if any(row[0] == reviewer for row in rows) else texts + [text]

    def _update_item(self, db, item: Item, reviewer, action, text, verdict, reason, seconds, now, expected) -> None:
        release = "lease_owner = NULL, lease_expires = NULL, claimed_at = NULL, version = version + 1"
        if action == "skip":
            db.execute(f"UPDATE items SET status = 'skipped', queue = 'skipped', {release} WHERE id = ?", (item.id,))
            return
        if action == "flag":
            query = f"UPDATE items SET status = 'flagged', flag_reason = ?, {release} WHERE id = ?"
            db.execute(query, (reason, item.id))
            return
        db.execute(
            "INSERT INTO reviews (item_id, reviewer, text, verdict, created_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (item_id, reviewer) DO UPDATE SET text = excluded.text, verdict = excluded.verdict",
            (item.id, reviewer, text, verdict, now),
        )
        query = "SELECT text FROM reviews WHERE item_id = ? ORDER BY created_at, rowid"
        texts = [row[0] for row in db.execute(query, (item.id,))]
        agreement_wer = expected[1] if expected is not None and expected[0] == texts else agreement(texts)
        status = "corrected" if len(texts) >= self.reviews_needed else "pending"
        db.execute(
            "UPDATE items SET status = ?, queue = 'pending', text = ?, verdict = ?, reviewer = ?, corrected_at = ?,"
            f" seconds = ?, flag_reason = NULL, reviews = ?, agreement_wer = ?, {release} WHERE id = ?",
            (status, text, verdict, reviewer, now, seconds, len(texts), agreement_wer, item.id),
        )


def agreement(texts: list[str]) -> float | None:
    """Mean WER (%) between every pair of corrections, words only (0 is full agreement); None below two."""
    pairs = list(itertools.combinations(texts, 2))
    if not pairs:
        return None
    return sum(score_pair(a, b, "normalized").wer for a, b in pairs) / len(pairs)


def _reviewer_name(reviewer: str) -> str:
    if not (reviewer or "").strip():
        raise StoreError("a reviewer name is required")
    return reviewer.strip()


def _read_store(spec: Spec) -> Iterator[Example]:
    """`store:DATA_DIR`: the corrected, unflagged items, for eval and train."""
    data_dir = spec.source.split(":", 1)[1] or str(default_data_dir())
    try:
        store = ReviewStore(data_dir, create=False)
    except StoreError as error:
        raise CorpusError(str(error)) from error
    for item in store.corrected():
        split = item.source_split or None
        yield Example(str(item.id), str(store.audio_path(item.audio_hash)), item.text or "", spec.name, split)


SCHEMES["store"] = _read_store
