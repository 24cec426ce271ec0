"""Keeping a copy of the corrections in a Hugging Face dataset repo, for Spaces whose disk is wiped on restart.

Optional: set `ASR_PT_HUB_DATASET` (a dataset repo id) and a token (`HF_TOKEN`). A `CommitScheduler` exports the
store into a folder and pushes it every few minutes (only the parquet and the card: the parquet embeds the audio, and
`sft.jsonl` holds local paths); a store that starts empty is restored from the repo first.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from huggingface_hub import CommitScheduler, HfApi

from asr_pt.review.export import PARQUET_PATH, export_dataset, restore_export
from asr_pt.review.store import ReviewStore

logger = logging.getLogger(__name__)
DEFAULT_EVERY_MINUTES = float(os.environ.get("ASR_PT_HUB_SYNC_MINUTES", 5))


class StoreSyncScheduler(CommitScheduler):
    """A CommitScheduler that exports the store into its folder before each push, when the store changed."""

    def __init__(self, store: ReviewStore, *, folder_path: str | Path, **kwargs):
        self.store = store  # before super().__init__, whose thread pushes at once
        self._exported_change: int | None = None
        kwargs.setdefault("ignore_patterns", ["audio/*", "sft.jsonl", "**/.*.partial"])
        super().__init__(folder_path=folder_path, repo_type="dataset", **kwargs)

    def push_to_hub(self):
        if not self.store.corrected(limit=1):
            return None  # never replace the Hub copy with an empty export (and datasets cannot write an empty one)
        change = self.store.last_change()
        if change != self._exported_change:
            with self.lock:
                export_dataset(self.store, self.folder_path)
            self._exported_change = change
        return super().push_to_hub()


def restore_from_hub(store: ReviewStore, repo_id: str, *, token: str | None = None, hf_api: HfApi | None = None) -> int:
    """Restore the corrections from the repo into an empty store; returns how many (0 when the store has items)."""
    if sum(store.counts().values()):
        return 0
    api = hf_api or HfApi(token=token)
    with tempfile.TemporaryDirectory() as folder:
        try:
            api.snapshot_download(repo_id=repo_id, repo_type="dataset", local_dir=folder, allow_patterns=[PARQUET_PATH])
        except Exception as error:  # a new repo, no network, no access: the app still starts, with an empty store
            logger.warning("could not restore the review store from %s: %s", repo_id, error)
            return 0
        if not (Path(folder) / PARQUET_PATH).exists():
            return 0
        restored = restore_export(store, folder)
    logger.info("restored %d corrected items from %s", restored, repo_id)
    return restored


def start_hub_sync(
    store: ReviewStore,
    folder: str | Path,
    *,
    repo_id: str | None = None,
    token: str | None = None,
    every_minutes: float = DEFAULT_EVERY_MINUTES,
    hf_api: HfApi | None = None,
) -> StoreSyncScheduler | None:
    """Restore an empty store from the repo, then push exports to it every few minutes; None when not configured."""
    repo_id = repo_id or os.environ.get("ASR_PT_HUB_DATASET")
    token = token or os.environ.get("HF_TOKEN")
    if not repo_id or not (token or hf_api):
        return None
    restore_from_hub(store, repo_id, token=token, hf_api=hf_api)
    return StoreSyncScheduler(
        store, folder_path=folder, repo_id=repo_id, token=token, private=True, every=every_minutes, hf_api=hf_api
    )
