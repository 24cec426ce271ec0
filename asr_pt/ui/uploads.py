"""Uploads leave Gradio's upload folder as soon as they are read, accepted or refused: they would pile up there.

Gradio names an upload by its content, so the same bytes uploaded for another request (two tabs, an API client
sending one file twice, the same clip transcribed again with another language) arrive under the same path, maybe
after the file was deleted. The clips read in the last minutes are kept in memory by path, within a byte budget.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Container
from pathlib import Path

from gradio.utils import get_upload_folder

from asr_pt.audio import Audio, AudioError, read_audio

RECENT_SECONDS = 900
RECENT_BYTES = 256 * 2**20  # 70 minutes of 16 kHz float32 audio


def remove_upload(path: str | None, kept: Container[str] = ()) -> None:
    """Deletes what Gradio received at `path`: never a path outside its upload folder, nor the examples it keeps
    there for every visitor."""
    if not path or path in kept:
        return
    file, folder = Path(path).resolve(), Path(get_upload_folder()).resolve()
    if folder not in file.parents:
        return
    file.unlink(missing_ok=True)
    if file.parent != folder:
        with contextlib.suppress(OSError):  # Gradio puts each upload in a folder of its own
            file.parent.rmdir()


class RecentUploads:
    """The clips read from uploads in the last `seconds`, by path, at most `max_bytes` of samples."""

    def __init__(self, seconds: float = RECENT_SECONDS, max_bytes: int = RECENT_BYTES):
        self.seconds, self.max_bytes = seconds, max_bytes
        self._clips: OrderedDict[str, tuple[float, Audio]] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, path: str | None, max_seconds: float, kept: Container[str] = ()) -> Audio:
        """The clip at `path`, from memory or from the file, which is removed either way."""
        if not path:
            raise AudioError("no audio: record a clip or upload a file first")
        try:
            clip = self._get(path)
            if clip is None:
                clip = read_audio(path, max_seconds=max_seconds)
                self._put(path, clip)
            return clip
        finally:
            remove_upload(path, kept)

    def _get(self, path: str) -> Audio | None:
        with self._lock:
            self._expire()
            entry = self._clips.get(path)
            return entry[1] if entry else None

    def _put(self, path: str, clip: Audio) -> None:
        with self._lock:
            self._clips[path] = (time.monotonic(), clip)
            self._expire()
            while self._clips and sum(c.samples.nbytes for _, c in self._clips.values()) > self.max_bytes:
                self._clips.popitem(last=False)

    def _expire(self) -> None:
        while self._clips and next(iter(self._clips.values()))[0] < time.monotonic() - self.seconds:
            self._clips.popitem(last=False)
