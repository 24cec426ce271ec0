"""Whether a process still runs: folders named by the process that writes them (the int8 cache's half-written
entries, the app's scratch folders) are left-overs once it is gone."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists, another user's included (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive all the same
        pass
    return True
