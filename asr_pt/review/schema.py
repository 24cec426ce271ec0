"""The review store's SQLite schema, as a list of migrations: a database at version k gets MIGRATIONS[k:] applied."""

from __future__ import annotations

import sqlite3

# One entry per schema version; a database at version k gets MIGRATIONS[k:] applied, each in its own transaction.
MIGRATIONS = [
    """
    CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        audio_hash TEXT NOT NULL,
        duration REAL NOT NULL,
        source TEXT NOT NULL,                  -- "demo" or the corpus name
        source_id TEXT NOT NULL,               -- the clip id within its source
        source_split TEXT NOT NULL DEFAULT '',
        reference TEXT NOT NULL DEFAULT '',
        hypothesis_finetuned TEXT NOT NULL,
        hypothesis_base TEXT NOT NULL,
        model_finetuned TEXT NOT NULL,
        model_base TEXT NOT NULL,
        disagreement REAL NOT NULL,            -- WER (%) between the hypotheses: the queue's priority
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'in_review', 'corrected', 'skipped', 'flagged')),
        queue TEXT NOT NULL DEFAULT 'pending' CHECK (queue IN ('pending', 'skipped')),  -- where a lapsed lease returns
        text TEXT,
        verdict TEXT CHECK (verdict IS NULL OR verdict IN ('finetuned_better', 'base_better', 'equal', 'both_wrong')),
        reviewer TEXT,
        corrected_at REAL,
        seconds REAL,                          -- how long the last save took its reviewer
        flag_reason TEXT,
        reviews INTEGER NOT NULL DEFAULT 0,
        agreement_wer REAL,                    -- mean WER (%) between the reviewers' corrections, with two or more
        version INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_expires REAL,
        claimed_at REAL,
        created_at REAL NOT NULL,
        UNIQUE (source, source_id)
    );
    CREATE INDEX items_queue ON items (status, disagreement DESC, id);
    CREATE INDEX items_lease ON items (status, lease_expires);
    CREATE TABLE reviews (
        item_id INTEGER NOT NULL REFERENCES items (id),
        reviewer TEXT NOT NULL,
        text TEXT NOT NULL,
        verdict TEXT,
        created_at REAL NOT NULL,
        PRIMARY KEY (item_id, reviewer)
    );
    CREATE TABLE revisions (
        id INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES items (id),
        action TEXT NOT NULL CHECK (action IN ('save', 'skip', 'flag')),
        reviewer TEXT NOT NULL,
        base_version INTEGER NOT NULL,
        applied INTEGER NOT NULL,              -- 0: refused because someone else saved first
        text TEXT,
        verdict TEXT,
        reason TEXT,
        seconds REAL,
        created_at REAL NOT NULL
    );
    CREATE INDEX revisions_item ON revisions (item_id, id);
    CREATE INDEX revisions_applied ON revisions (applied, id);
    CREATE TRIGGER revisions_no_update BEFORE UPDATE ON revisions
        BEGIN SELECT RAISE(ABORT, 'revisions are append-only'); END;
    CREATE TRIGGER revisions_no_delete BEFORE DELETE ON revisions
        BEGIN SELECT RAISE(ABORT, 'revisions are append-only'); END;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def statements(script: str) -> list[str]:
    """A migration script cut into statements (executescript would commit the open transaction)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s]
