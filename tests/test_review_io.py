"""Import into, export from and Hub sync of the review store, with real clips and the tiny models."""

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from datasets import Audio, load_dataset
from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

from asr_pt.audio import content_hash, load_audio
from asr_pt.cli import main
from asr_pt.corpora import read_examples
from asr_pt.models import ASRModel
from asr_pt.review.export import PARQUET_PATH, export_dataset, restore_export
from asr_pt.review.hub_sync import start_hub_sync
from asr_pt.review.importer import import_dataset
from asr_pt.review.store import ReviewStore


@pytest.fixture
def reviewed_store(tmp_path, speech_clips) -> ReviewStore:
    """Five spoken clips: three corrected (one from a test split), one flagged, one pending."""
    store = ReviewStore(tmp_path / "store")
    for i, (path, sentence) in enumerate(speech_clips[:5]):
        store.add_item(
            load_audio(path),
            source="cv",
            source_id=path.name,
            source_split="test" if i == 0 else "train",
            reference=sentence,
            hypothesis_finetuned=sentence.lower(),
            hypothesis_base=sentence.upper(),
            model_finetuned="ft-model",
            model_base="base-model",
        )
    for i, (_, sentence) in enumerate(speech_clips[:3]):
        item = store.claim_next("ana")
        store.save(item.id, "ana", f"{sentence} ({i})", item.version, verdict="finetuned_better")
    item = store.claim_next("bia")
    store.flag(item.id, "bia", item.version, "not Portuguese")
    return store


def test_export_round_trips_through_datasets(reviewed_store, tmp_path):
    out = tmp_path / "export"
    summary = export_dataset(reviewed_store, out)
    assert (summary.items, summary.test_items) == (3, 1)
    corrected = {str(item.id): item for item in reviewed_store.corrected()}

    rows = load_dataset("parquet", data_files=str(out / "data" / "*.parquet"), split="train")
    assert isinstance(rows.features["audio"], Audio) and rows.features["audio"].sampling_rate == 16000
    rows = rows.cast_column("audio", Audio(decode=False))
    assert sorted(rows["id"]) == sorted(corrected)
    for row in rows:
        item = corrected[row["id"]]
        stored = load_audio(reviewed_store.audio_path(item.audio_hash))
        assert (load_audio(row["audio"]["bytes"]) == stored).all()  # identical samples
        assert content_hash(load_audio(row["audio"]["bytes"])) == row["audio_hash"] == item.audio_hash
        assert (row["text"], row["reference"], row["verdict"], row["reviewer"]) == (
            item.text,
            item.reference,
            "finetuned_better",
            "ana",
        )
        assert (row["hypothesis_base"], row["model_finetuned"], row["source"]) == (
            item.hypothesis_base,
            "ft-model",
            "cv",
        )
        assert row["is_test"] == (row["source_split"] == "test")
    # the card's config points at the parquet (a cache of our own: the shared one can hold another "export" folder's)
    assert load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache")).num_rows == 3

    sft = [json.loads(line) for line in (out / "sft.jsonl").read_text(encoding="utf-8").splitlines()]
    train_items = [item for item in corrected.values() if not item.is_test]
    assert sorted(line["text"] for line in sft) == sorted(
        f"language Portuguese<asr_text>{item.text}" for item in train_items
    )
    assert all(Path(line["audio"]).is_absolute() and Path(line["audio"]).is_file() for line in sft)

    card = (out / "README.md").read_text(encoding="utf-8")
    assert "items: 3" in card and "test-split clips: 1" in card and "finetuned_better 3" in card
    assert "| cv | test | 1 |" in card and "`ft-model` / `base-model`" in card
    # eval and train read the export as a corpus: the test clip stays marked as test
    examples = list(read_examples(f"{out}?split=train"))
    assert sorted(e.is_test for e in examples) == [False, False, True]


def test_export_command_and_restore_into_an_empty_store(reviewed_store, tmp_path, capsys):
    out = tmp_path / "export"
    main(["export", "--data-dir", str(reviewed_store.data_dir), str(out)])
    assert "exported 3 corrected items" in capsys.readouterr().out
    fresh = ReviewStore(tmp_path / "fresh", reviews_needed=2)  # a restored item is corrected all the same
    assert restore_export(fresh, out) == 3
    before = {(i.source_id, i.text, i.audio_hash, i.verdict) for i in reviewed_store.corrected()}
    assert {(i.source_id, i.text, i.audio_hash, i.verdict) for i in fresh.corrected()} == before
    assert fresh.counts()["corrected"] == 3 and sum(fresh.counts().values()) == 3

    change, history = fresh.last_change(), [fresh.history(i.id) for i in fresh.corrected()]
    assert restore_export(fresh, out) == 0  # twice changes nothing
    assert (fresh.last_change(), [fresh.history(i.id) for i in fresh.corrected()]) == (change, history)


def test_import_queues_an_audiofolder_with_both_models(
    audiofolder_corpus, speech_clips, tmp_path, tiny_model_dir, other_tiny_model_dir
):
    store = ReviewStore(tmp_path)
    finetuned = ASRModel(str(tiny_model_dir), max_new_tokens=6)
    base = ASRModel(str(other_tiny_model_dir), max_new_tokens=6)
    summary = import_dataset(store, f"af={audiofolder_corpus}", finetuned, base, limit=5, batch_size=2, progress=False)
    assert (summary.queued, summary.already_queued, summary.unreadable) == (5, 0, [])
    items = [store.get(i) for i in range(1, 6)]
    assert [(i.source, i.source_id, i.reference) for i in items] == [
        ("af", path.name, sentence) for path, sentence in speech_clips[:5]
    ]
    expected = finetuned.transcribe(load_audio(speech_clips[0][0])).text
    assert items[0].hypothesis_finetuned == expected
    assert items[0].hypothesis_base == base.transcribe(load_audio(speech_clips[0][0])).text
    assert (items[0].model_finetuned, items[0].model_base) == (str(tiny_model_dir), str(other_tiny_model_dir))
    again = import_dataset(store, f"af={audiofolder_corpus}", finetuned, base, limit=6, batch_size=4, progress=False)
    assert (again.queued, again.already_queued) == (1, 5)  # a re-run only transcribes what is new


def test_import_command_reads_common_voice_and_reports_bad_clips(
    common_voice_corpus, tmp_path, tiny_model_dir, other_tiny_model_dir, capsys
):
    corpus = tmp_path / "cv"
    shutil.copytree(common_voice_corpus, corpus)
    broken = sorted((corpus / "clips").glob("*.mp3"))[0]
    broken.write_bytes(b"not audio")
    data = tmp_path / "data"
    main(
        ["import", "--data-dir", str(data), "--dataset", f"{corpus}?split=test", "--batch-size", "3"]
        + ["--max-new-tokens", "4", "--finetuned-model", str(tiny_model_dir), "--base-model", str(other_tiny_model_dir)]
    )
    printed = capsys.readouterr().out
    assert "queued 3 clips" in printed and f"left out (unreadable): {broken.name}" in printed
    store = ReviewStore(data)
    items = [store.get(i) for i in range(1, 4)]
    assert all(item.source_split == "test" and item.is_test and item.source == "cv-test" for item in items)
    assert all(store.audio_path(item.audio_hash).is_file() for item in items)


class StandInHfApi:
    """Plays the Hub for CommitScheduler and snapshot_download: a local folder per repo. No network here.

    `unreachable` names the calls that fail as they do when the network is down."""

    def __init__(self, remote: Path):
        self.remote = remote
        self.commits = []
        self.unreachable: set[str] = set()
        self._executor = ThreadPoolExecutor(max_workers=1)

    def create_repo(self, repo_id, private=None, repo_type=None, exist_ok=False):
        if "create_repo" in self.unreachable:
            raise requests.ConnectionError("Failed to resolve 'huggingface.co'")
        (self.remote / repo_id).mkdir(parents=True, exist_ok=True)
        self.created = (repo_id, private, repo_type)
        return SimpleNamespace(repo_id=repo_id)

    def run_as_future(self, fn, *args, **kwargs):
        return self._executor.submit(fn, *args, **kwargs)

    def create_commit(self, repo_id, repo_type, operations, commit_message, revision=None):
        for operation in operations:
            target = self.remote / repo_id / operation.path_in_repo
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(operation.path_or_fileobj.read())
        self.commits.append(sorted(operation.path_in_repo for operation in operations))

    def snapshot_download(self, repo_id, repo_type, local_dir, allow_patterns):
        if "snapshot_download" in self.unreachable:  # huggingface_hub's words when the repo cannot be reached
            raise LocalEntryNotFoundError("An error happened while trying to locate the files on the Hub")
        if not (self.remote / repo_id).is_dir():
            raise RepositoryNotFoundError(f"404 Client Error: Repository Not Found for url: {repo_id}")
        shutil.copytree(self.remote / repo_id, local_dir, dirs_exist_ok=True)
        return local_dir


def sync_once(store: ReviewStore, folder: Path, api: StandInHfApi):
    """Start the sync to me/reviews, push once, stop; what the push returned (None when nothing was pushed)."""
    scheduler = start_hub_sync(store, folder, repo_id="me/reviews", hf_api=api, every_minutes=60)
    try:
        return scheduler.trigger().result()
    finally:
        scheduler.stop()


def test_hub_sync_pushes_exports_and_restores_an_empty_store(reviewed_store, tmp_path):
    api = StandInHfApi(tmp_path / "hub")
    sync_once(reviewed_store, tmp_path / "sync", api)
    assert api.created == ("me/reviews", True, "dataset")  # private: reviewers' work is not public by default
    assert api.commits[0] == ["README.md", PARQUET_PATH]  # audio is in the parquet; sft.jsonl has local paths
    assert all(commit == api.commits[0] for commit in api.commits)

    fresh = ReviewStore(tmp_path / "restarted", reviews_needed=2)
    restarted = start_hub_sync(fresh, tmp_path / "sync2", repo_id="me/reviews", hf_api=api, every_minutes=60)
    try:
        restarted.trigger().result()  # the restarted Space's first push must not empty the Hub copy
    finally:
        restarted.stop()
    assert {(i.text, i.audio_hash) for i in fresh.corrected()} == {
        (i.text, i.audio_hash) for i in reviewed_store.corrected()
    }
    pushed = str(api.remote / "me/reviews" / PARQUET_PATH)
    assert load_dataset("parquet", data_files=pushed, split="train", cache_dir=str(tmp_path / "cache")).num_rows == 3
    assert start_hub_sync(fresh, tmp_path / "sync3", repo_id=None, token=None) is None  # not configured: no sync

    commits = len(api.commits)
    empty = start_hub_sync(ReviewStore(tmp_path / "empty"), tmp_path / "sync4", repo_id="me/new", hf_api=api)
    try:
        assert empty.trigger().result() is None  # nothing corrected yet: nothing pushed, no empty parquet
    finally:
        empty.stop()
    assert len(api.commits) == commits


def test_a_hub_copy_that_could_not_be_read_is_never_pushed_over(reviewed_store, tmp_path, speech_clips):
    api = StandInHfApi(tmp_path / "hub")
    sync_once(reviewed_store, tmp_path / "sync", api)
    on_hub = api.remote / "me/reviews" / PARQUET_PATH
    three_items = on_hub.read_bytes()

    api.unreachable = {"snapshot_download"}  # the Space restarts during a network hiccup
    fresh = ReviewStore(tmp_path / "restarted")
    restarted = start_hub_sync(fresh, tmp_path / "sync2", repo_id="me/reviews", hf_api=api, every_minutes=60)
    try:
        assert sum(fresh.counts().values()) == 0  # the app starts all the same
        path, sentence = speech_clips[5]
        correct_a_demo_clip(fresh, path, sentence)
        assert restarted.trigger().result() is None  # one new item must not replace the Hub's three
        assert on_hub.read_bytes() == three_items

        api.unreachable = set()  # the network is back: the next push reads the Hub's copy in, then pushes both
        restarted.trigger().result()
    finally:
        restarted.stop()
    texts = {i.text for i in reviewed_store.corrected()} | {sentence}
    assert {i.text for i in fresh.corrected()} == texts
    pushed = load_dataset("parquet", data_files=str(on_hub), split="train", cache_dir=str(tmp_path / "cache"))
    assert set(pushed["text"]) == texts

    # A store that is not empty is read against the Hub too before its first push; with no Hub at all, no sync.
    api.unreachable = {"snapshot_download"}
    pushed_before = on_hub.read_bytes()
    again = start_hub_sync(ReviewStore(tmp_path / "other"), tmp_path / "sync3", repo_id="me/reviews", hf_api=api)
    try:
        correct_a_demo_clip(again.store, path, "só isto")
        assert again.trigger().result() is None and on_hub.read_bytes() == pushed_before
    finally:
        again.stop()
    api.unreachable = {"snapshot_download", "create_repo"}
    assert (
        start_hub_sync(ReviewStore(tmp_path / "offline"), tmp_path / "sync4", repo_id="me/reviews", hf_api=api) is None
    )


def correct_a_demo_clip(store: ReviewStore, path: Path, text: str) -> None:
    store.add_item(load_audio(path), hypothesis_finetuned="a", hypothesis_base="b", model_finetuned="f", model_base="b")
    item = store.claim_next("bia")
    store.save(item.id, "bia", text, item.version)
