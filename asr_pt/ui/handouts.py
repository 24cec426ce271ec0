"""Files handed to one logged-in reviewer (the clip on their screen, an export), and taken back.

The store's folder is never served: Gradio serves anything in an allowed path to anyone. A handout is a copy in a
fresh random folder inside Gradio's upload folder, which Gradio serves without copying it again (so the link is
unguessable, and deleting the copy ends it), and which Gradio may serve wherever the store lives (a Space's `/data`
is outside both the working and the temp folder). A login holds one file of each kind: the next one of that kind,
logging out, or `seconds` passing deletes it.
"""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from gradio.utils import get_upload_folder

from asr_pt.review.logins import Session

PREFIX = "asr-pt-handout-"


class Handouts:
    """Copies of files for one login each, deleted when replaced, at logout, or after `seconds`."""

    def __init__(
        self, *, seconds: float = 30 * 60, folder: str | Path | None = None, clock: Callable[[], float] = time.time
    ):
        self.seconds, self.clock = seconds, clock
        self.folder = Path(folder or get_upload_folder())
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def give(
        self, session: Session, kind: str, name: str, write: Callable[[Path], None], seconds: float | None = None
    ) -> str:
        """A new file called `name` for this login, written by `write(path)`, that lasts `seconds` (default: the
        handouts'); it replaces this login's last one of this kind."""
        self.sweep()
        folder = self.folder / f"{PREFIX}{secrets.token_hex(16)}"
        folder.mkdir(parents=True)
        path = folder / name
        write(path)
        with self._lock:
            old = session.files.get(kind)
            session.files[kind] = str(path)
            self._expiry[str(path)] = self.clock() + (self.seconds if seconds is None else seconds)
        if old:
            self._delete(old)
        return str(path)

    def copy(self, session: Session, kind: str, source: Path, name: str | None = None) -> str:
        return self.give(session, kind, name or source.name, lambda path: shutil.copyfile(source, path))

    def take_back(self, session: Session, kind: str | None = None) -> None:
        """Delete the file of this kind handed to this login, or every one (it logged out)."""
        with self._lock:
            kinds = [kind] if kind else list(session.files)
            paths = [session.files.pop(k) for k in kinds if k in session.files]
        for path in paths:
            self._delete(path)

    def sweep(self) -> int:
        """Delete the handouts older than `seconds`; returns how many."""
        now = self.clock()
        with self._lock:
            stale = [path for path, expiry in self._expiry.items() if expiry <= now]
        for path in stale:
            self._delete(path)
        return len(stale)

    def sweep_in_background(self, every: float = 60.0) -> None:
        """Sweep every `every` seconds in a daemon thread, so a link lapses even when nobody uses the page."""

        def loop() -> None:
            while True:
                time.sleep(every)
                self.sweep()

        threading.Thread(target=loop, name="asr-pt-handout-sweeper", daemon=True).start()

    def _delete(self, path: str) -> None:
        with self._lock:
            self._expiry.pop(path, None)
        shutil.rmtree(Path(path).parent, ignore_errors=True)
