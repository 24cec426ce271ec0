"""Reviewer logins: who is logged in, and how fast passwords may be guessed.

A login hands the page a random token; the reviewer's name, the item on their screen and the files handed to them
live here, keyed by that token. Gradio keeps only the latest 10,000 sessions' `gr.State`, so a reviewer kept there
is logged out by enough visitors; nothing a visitor does adds an entry here (only a password or Hugging Face login
does), so a login outlives any amount of visitor traffic and the memory stays bounded.

Failed passwords are counted per (reviewer name, client address) pair and per client address: each failure doubles
the wait before the next try is even checked (no sleeping: a refused try costs nothing), and after `lock_after`
failures the pair or the client is locked out for `lockout_seconds`. A name alone is never locked: a guesser
anywhere else would then keep its reviewer out, right password and all. Both classes take a clock, so tests move
time instead of waiting.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("asr_pt.logins")

SESSION_SECONDS = 12 * 3600  # a reviewer logs in once a working day
MAX_SESSIONS = 1000  # logins held at once (each took a password); the oldest is dropped beyond this
MAX_NAME_CHARS = 100  # longer "names" are wrong names: no reviewer has one


@dataclass
class Session:
    """One login: the reviewer, the item on their screen as (id, version), and when the login lapses."""

    reviewer: str
    expires: float
    item: tuple[int, int] | None = None
    files: dict[str, str] = field(default_factory=dict)  # what was handed to this login: kind -> path


class ReviewerSessions:
    """Logged-in reviewers by token, bounded in number and in time; safe to share between threads."""

    def __init__(
        self,
        *,
        seconds: float = SESSION_SECONDS,
        max_sessions: int = MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.seconds, self.max_sessions, self.clock = seconds, max_sessions, clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, reviewer: str) -> str:
        """A new login for `reviewer`: the token the page keeps and sends back with every event."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[token] = Session(reviewer, self.clock() + self.seconds)
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        return token

    def get(self, token: str | None) -> Session | None:
        """The login a token stands for; None for a token that is unknown, forged or lapsed."""
        if not isinstance(token, str) or not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if session.expires <= self.clock():
                del self._sessions[token]
                return None
            self._sessions.move_to_end(token)
            return session

    def close(self, token: str | None) -> Session | None:
        """Log out: the token stops working at once; returns the login it was."""
        with self._lock:
            return self._sessions.pop(token, None) if isinstance(token, str) else None

    def __len__(self) -> int:
        return len(self._sessions)


@dataclass
class _Failures:
    count: int
    last: float
    until: float  # no try is checked before this time


class LoginThrottle:
    """Slows down and then locks out password guessing, per (name, client) pair and per client address."""

    def __init__(
        self,
        *,
        first_delay: float = 1.0,
        max_delay: float = 60.0,
        pair_lock_after: int = 5,
        client_lock_after: int = 20,
        lockout_seconds: float = 15 * 60,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.first_delay, self.max_delay, self.lockout_seconds = first_delay, max_delay, lockout_seconds
        self.lock_after = {"pair": pair_lock_after, "client": client_lock_after}
        self.max_entries, self.clock = max_entries, clock
        self._failures: OrderedDict[tuple[str, ...], _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, name: str, client: str) -> float:
        """Seconds before a try for this name from this client may be checked; 0 when it may be now."""
        now = self.clock()
        with self._lock:
            entries = [self._failures.get(key) for key in _keys(name, client)]
        return max([entry.until - now for entry in entries if entry is not None] + [0.0])

    def failed(self, name: str, client: str) -> float:
        """Count a wrong password; returns the wait before the next try (and logs a lockout)."""
        now = self.clock()
        waits = []
        with self._lock:
            for key in _keys(name, client):
                entry = self._failures.pop(key, None)
                if entry is None or now - entry.last > self.lockout_seconds:  # an old streak is forgotten
                    entry = _Failures(0, now, now)
                entry.count += 1
                entry.last = now
                if entry.count >= self.lock_after[key[0]]:
                    entry.until = now + self.lockout_seconds
                    if entry.count == self.lock_after[key[0]]:
                        who = " from ".join(repr(part) for part in key[1:])
                        log.warning("login: %s %s locked out for %.0f s", key[0], who, self.lockout_seconds)
                else:
                    entry.until = now + min(self.first_delay * 2 ** (entry.count - 1), self.max_delay)
                self._failures[key] = entry
                waits.append(entry.until - now)
            while len(self._failures) > self.max_entries:  # guessed names cannot grow this without bound
                self._failures.popitem(last=False)
        log.info("login: wrong password for %r from %s", name[:MAX_NAME_CHARS], client)
        return max(waits)

    def succeeded(self, name: str, client: str) -> None:
        """A right password clears the pair's streak; the client's stays, so one known password does not reset it."""
        with self._lock:
            self._failures.pop(_keys(name, client)[0], None)


def _keys(name: str, client: str) -> list[tuple[str, ...]]:
    """The throttle's keys; a name is cut short, so a guesser's megabyte names do not fill the memory."""
    name, client = (name or "").strip().lower()[:MAX_NAME_CHARS], (client or "unknown")[:100]
    return [("pair", name, client), ("client", client)]


def wait_message(seconds: float) -> str:
    """ "try again in ..." for a wait in seconds, in the unit a person reads."""
    if seconds < 90:
        return f"try again in {max(1, round(seconds))} s"
    return f"try again in {round(seconds / 60)} minutes"
