"""Keeping a copy of the corrections in a Hugging Face dataset repo, for Spaces whose disk is wiped on restart.

Optional: set `ASR_PT_HUB_DATASET` (a dataset repo id) and a token (`HF_TOKEN`). A `CommitScheduler` exports the
store into a folder and pushes it every few minutes (only the parquet and the card: the parquet embeds the audio, and
`sft.jsonl` holds local paths). A push replaces the Hub's copy, so nothing is pushed until that copy has been read and
merged into the store (or the repo is known to hold none): a store that starts empty is restored before the page
opens, any other store on the first push, and after a failed read (no network at start) the next push tries again.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from huggingface_hub import CommitScheduler, HfApi
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

from asr_pt.review.export import PARQUET_PATH, export_dataset, restore_export
from asr_pt.review.store import ReviewStore
from asr_pt.settings import DEFAULTS

logger = logging.getLogger(__name__)
DEFAULT_EVERY_MINUTES = DEFAULTS.hub_sync_minutes


class StoreSyncScheduler(CommitScheduler):
    """A CommitScheduler that exports the store into its folder before each push, when the store changed."""

    def __init__(self, store: ReviewStore, *, folder_path: str | Path, hub_copy_read: bool = False, **kwargs):
        self.store = store  # before super().__init__, whose thread pushes at once
        self._hub_copy_read = hub_copy_read
        self._exported_change: int | None = None
        kwargs.setdefault("ignore_patterns", ["audio/*", "sft.jsonl", "**/.*.partial"])
        super().__init__(folder_path=folder_path, repo_type="dataset", **kwargs)

    def push_to_hub(self):
        if not self._hub_copy_read:
            self._hub_copy_read = merge_hub_copy(self.store, self.repo_id, self.api)
            if not self._hub_copy_read:
                return None  # its copy may hold work this store lacks: pushing would replace it
        if not self.store.corrected(limit=1):
            return None  # never replace the Hub copy with an empty export (and datasets cannot write an empty one)
        change = self.store.last_change()
        if change != self._exported_change:
            with self.lock:
                export_dataset(self.store, self.folder_path)
            self._exported_change = change
        return super().push_to_hub()


def restore_from_hub(store: ReviewStore, repo_id: str, *, token: str | None = None, hf_api: HfApi | None = None) -> int:
    """Merge the repo's export into the store, keeping what the store holds already; returns how many items came back.

    A repo that does not exist, or holds no export yet, restores nothing. Any other failure (no network, the Hub
    down, a gated repo) raises: the Hub's copy was not read.
    """
    api = hf_api or HfApi(token=token)
    with tempfile.TemporaryDirectory() as folder:
        try:
            api.snapshot_download(repo_id=repo_id, repo_type="dataset", local_dir=folder, allow_patterns=[PARQUET_PATH])
        except RepositoryNotFoundError as error:  # the Hub's definite answer (a token that cannot read cannot write)
            if isinstance(error, GatedRepoError):
                raise
            return 0
        if not (Path(folder) / PARQUET_PATH).exists():
            return 0
        restored = restore_export(store, folder)
    logger.info("restored %d corrected items from %s", restored, repo_id)
    return restored


def merge_hub_copy(store: ReviewStore, repo_id: str, api: HfApi) -> bool:
    """Whether the repo's copy is now in the store (or there is none), so a push cannot lose it."""
    try:
        restore_from_hub(store, repo_id, hf_api=api)
    except Exception as error:  # no network, Hub down, a corrupt parquet...: the app works on, nothing is pushed
        logger.warning(
            "could not read the review store's copy from %s, so nothing is pushed to it yet: %s", repo_id, error
        )
        return False
    return True


def start_hub_sync(
    store: ReviewStore,
    folder: str | Path,
    *,
    repo_id: str | None = None,
    token: str | None = None,
    every_minutes: float = DEFAULT_EVERY_MINUTES,
    hf_api: HfApi | None = None,
) -> StoreSyncScheduler | None:
    """Restore an empty store from the repo, then push exports to it every few minutes; None when not configured or
    when the repo cannot be reached at start (the app then runs without a Hub copy, and says so in the log)."""
    if not repo_id or not (token or hf_api):
        return None
    api = hf_api or HfApi(token=token)
    read = merge_hub_copy(store, repo_id, api) if not sum(store.counts().values()) else False  # the rest: in the thread
    try:
        return StoreSyncScheduler(
            store, folder_path=folder, hub_copy_read=read, repo_id=repo_id, token=token, private=True,
            every=every_minutes, hf_api=api,
        )  # fmt: skip
    except Exception as error:  # creating the repo needs the Hub: without it, no sync this run, and nothing lost
        logger.error("Hub sync to %s not started: %s", repo_id, error)
        return None
