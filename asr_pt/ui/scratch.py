"""The server's own folders in the temp folder (a "many files" session's clips and downloads): named by the process
that made them, so what a previous run left (a crash, a restart) is removed at start, and measured by the disk
budget with Gradio's upload folder."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from asr_pt.processes import process_alive

PREFIX = "asr-pt-scratch-"
OWNED = re.compile(re.escape(PREFIX) + r"(\d+)-")


def scratch_folder() -> Path:
    """A new empty folder of this process's."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))


def scratch_folders() -> list[Path]:
    """Every scratch folder in the temp folder, this process's and others'."""
    return [path for path in Path(tempfile.gettempdir()).glob(PREFIX + "*") if path.is_dir()]


def remove_leftovers() -> int:
    """Removes the scratch folders whose process is gone; returns how many."""
    removed = 0
    for folder in scratch_folders():
        owner = OWNED.match(folder.name)
        if owner and not process_alive(int(owner[1])):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed
