"""Many files at once: batched transcription (asr_pt.batch), zips opened within limits (asr_pt.uploads), and the
tab's plain functions (asr_pt.ui.batch): downloads and "send all to review" from what the server kept."""

import csv
import gc
import io
import json
import zipfile
from pathlib import Path

import gradio as gr
import pytest
from conftest import DEMO_SETTINGS

from asr_pt.batch import transcribe_many
from asr_pt.metrics import score_pair
from asr_pt.models import ASRModel, ModelLoadError
from asr_pt.review.store import ReviewStore
from asr_pt.ui.batch import BatchTranscriber, send_batch_to_review, show_batch
from asr_pt.ui.send_to_review import SendRate
from asr_pt.ui.status import Models
from asr_pt.uploads import Upload, UploadError, gather


@pytest.fixture(scope="module")
def models(tiny_model_dir, other_tiny_model_dir):
    return Models(*(ASRModel(str(path), max_new_tokens=8) for path in (tiny_model_dir, other_tiny_model_dir)))


def count_generates(model: ASRModel, monkeypatch) -> list[int]:
    """The batch size of every generate call the model makes."""
    network = model.load().model
    generate = network.generate
    sizes = []

    def counting(*args, **kwargs):
        sizes.append(kwargs["input_ids"].shape[0])
        return generate(*args, **kwargs)

    monkeypatch.setattr(network, "generate", counting)
    return sizes


def test_files_are_transcribed_in_batches_one_generate_per_model_per_batch(models, speech_clips, tmp_path, monkeypatch):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really")
    uploads = [Upload(path.name, path) for path, _ in speech_clips[:5]]
    uploads.insert(2, Upload("broken.wav", broken))
    sizes = {side: count_generates(models[side], monkeypatch) for side in ("finetuned", "base")}
    progress = []
    rows = transcribe_many(
        uploads, models["finetuned"], models["base"], batch_size=2, progress=lambda *p: progress.append(p)
    )
    assert sizes == {"finetuned": [2, 2, 1], "base": [2, 2, 1]}
    assert progress == [(2, 6), (5, 6), (6, 6)]  # files done, the unreadable one among them
    assert [row.file for row in rows] == [upload.name for upload in uploads]
    assert "broken.wav is not readable audio" in rows[2].error and rows[2].finetuned is None
    for row in rows[:2] + rows[3:]:
        assert row.error is None and row.finetuned and row.base and row.audio_seconds > 1
        assert row.wer == score_pair(row.finetuned, row.base, "written").wer
        assert row.truncated == ["finetuned", "base"]  # 8 tokens of gibberish: the tiny models never stop earlier


def test_too_long_files_and_the_total_limit_are_flagged_and_the_rest_finish(models, speech_clips):
    uploads = [Upload(path.name, path) for path, _ in (speech_clips[i] for i in (0, 3, 1, 2))]  # 1.9, 2.4, 1.6, 2.3 s
    rows = transcribe_many(uploads, models["finetuned"], models["base"], max_seconds=2.35, max_total_seconds=4.5)
    errors = [row.error for row in rows]
    assert errors[0] is None and errors[2] is None and rows[0].finetuned and rows[2].finetuned
    assert "too long: 2.4 s" in errors[1] and "at most 4.5 s of audio" in errors[3]


def test_the_total_is_judged_from_headers_before_decoding_and_a_file_listed_twice_counts_once(
    models, speech_clips, monkeypatch
):
    import asr_pt.batch

    decoded = []
    read = asr_pt.batch.read_audio
    monkeypatch.setattr(
        asr_pt.batch, "read_audio", lambda path, **kw: decoded.append(Path(path).name) or read(path, **kw)
    )
    first, second = speech_clips[0][0], speech_clips[1][0]  # 1.9 s and 1.6 s
    uploads = [Upload("a.wav", first)] * 4 + [Upload("b.wav", second)]
    rows = transcribe_many(uploads, models["finetuned"], models["base"], max_total_seconds=3.0)
    assert decoded == [first.name]  # once, and the file past the total never
    assert [row.error for row in rows[:4]] == [None] * 4 and len({row.finetuned for row in rows[:4]}) == 1
    assert "at most 3 s of audio" in rows[4].error


def test_a_model_that_cannot_load_leaves_its_side_empty_and_says_why(models, speech_clips, tmp_path):
    missing = ASRModel(str(tmp_path / "nowhere"))
    rows = transcribe_many([Upload("a.wav", speech_clips[0][0])], models["finetuned"], missing)
    assert rows[0].finetuned and rows[0].base is None and rows[0].wer is None and "nowhere" in rows[0].error
    with pytest.raises(ModelLoadError):
        transcribe_many([Upload("a.wav", speech_clips[0][0])], missing, missing)


def make_zip(path, members: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return str(path)


def test_zip_member_names_cannot_escape_the_folder(speech_clips, tmp_path):
    clip = speech_clips[0][0].read_bytes()
    names = ["../../escaped.wav", "/etc/absolute.wav", "a\\..\\..\\win.wav", "dir/\x1b[31mred\x07.wav", "__MACOSX/._x"]
    archive = make_zip(tmp_path / "evil.zip", dict.fromkeys(names, clip))
    uploads = gather([archive], tmp_path / "work")
    assert [u.name for u in uploads] == ["escaped.wav", "absolute.wav", "win.wav", "[31mred.wav"]
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["0000.wav", "0001.wav", "0002.wav", "0003.wav"]
    assert not list(tmp_path.glob("**/escaped.wav")) and all(u.path.read_bytes() == clip for u in uploads)


def test_zip_bombs_and_too_many_files_are_refused_before_unpacking(tmp_path):
    bomb = make_zip(tmp_path / "bomb.zip", {"zeros.wav": bytes(20_000_000)})  # 20 MB that compress to 20 kB
    with pytest.raises(UploadError, match="would unpack to 20 MB"):
        gather([bomb], tmp_path / "work", max_bytes=10_000_000)
    assert not (tmp_path / "work").exists()
    many = make_zip(tmp_path / "many.zip", {f"{i}.wav": b"x" for i in range(12)})
    with pytest.raises(UploadError, match="too many files"):
        gather([many], tmp_path / "work", max_files=10)
    huge_directory = make_zip(tmp_path / "entries.zip", {f"d{i}/": b"" for i in range(500)})
    with pytest.raises(UploadError, match="holds 500 entries"):
        gather([huge_directory], tmp_path / "work", max_files=10)
    with pytest.raises(UploadError, match="too many files"):
        gather([bomb] * 11, tmp_path / "work", max_files=10)


def test_a_broken_zip_or_an_unzippable_member_is_told(tmp_path, speech_clips):
    archive = make_zip(tmp_path / "ok.zip", {"a.wav": speech_clips[0][0].read_bytes()})
    data = bytearray(open(archive, "rb").read())
    data[40:200] = bytes(160)  # the member's compressed bytes
    (tmp_path / "corrupt.zip").write_bytes(bytes(data))
    uploads = gather([tmp_path / "corrupt.zip"], tmp_path / "work")
    assert uploads[0].path is None and "could not be unpacked" in uploads[0].error


def test_the_tab_keeps_the_batch_server_side_and_writes_safe_downloads(models, speech_clips, tmp_path):
    evil = tmp_path / "=HYPERLINK(1).wav"
    evil.write_bytes(speech_clips[1][0].read_bytes())
    rows, session = BatchTranscriber(models, DEMO_SETTINGS)([str(speech_clips[0][0]), str(evil)], "Portuguese", None)
    table, csv_path, jsonl_path, summary = show_batch(session)
    assert [row["file"] for row in rows] == [speech_clips[0][0].name, evil.name] == [r[0] for r in table]
    assert "**2** files transcribed" in summary
    records = list(csv.DictReader(io.StringIO(open(csv_path, encoding="utf-8").read())))
    assert records[1]["file"] == "'=HYPERLINK(1).wav" and records[0]["finetuned"] == rows[0]["finetuned"]
    assert [json.loads(line) for line in open(jsonl_path, encoding="utf-8")] == rows
    folder = session.folder
    del session  # however Gradio drops a session, even evicting it without a delete callback
    gc.collect()
    assert not folder.exists()


def test_send_all_to_review_sends_what_the_models_wrote_once_and_within_the_limit(models, speech_clips, tmp_path):
    store = ReviewStore(tmp_path / "store")
    with pytest.raises(gr.Error, match="Transcribe files first"):
        send_batch_to_review(store, None, SendRate(), 2, "10.0.0.1")
    files = [str(path) for path, _ in speech_clips[:3]] + [str(tmp_path)]  # a folder: not audio
    rows, session = BatchTranscriber(models, DEMO_SETTINGS)(files, "Portuguese", None)
    rate = SendRate(limit=12)  # a visitor's share: 3
    assert send_batch_to_review(store, session, rate, 2, "10.0.0.1") == (
        "Sent 2 new clips to review. Thank you! 1 were not sent (a limit on sends was reached; try later)."
    )
    items = [store.get(i) for i in (1, 2)]
    assert [item.hypothesis_finetuned for item in items] == [row["finetuned"] for row in rows[:2]]
    with pytest.raises(gr.Error, match="at most 2 clips") as refused:  # the session's limit: the third waits
        send_batch_to_review(store, session, rate, 2, "10.0.0.1")
    assert "2 were in the review queue already" in str(refused.value)
    _, other_session = BatchTranscriber(models, DEMO_SETTINGS)(files, "Portuguese", None)
    assert send_batch_to_review(store, other_session, rate, 2, "10.0.0.1") == (
        "Sent 1 new clips to review. Thank you! 2 were in the review queue already."  # duplicates cost nothing
    )
    assert (
        send_batch_to_review(store, other_session, rate, 2, "10.0.0.1") == "This batch is in review already. Thank you!"
    )
    _, third_session = BatchTranscriber(models, DEMO_SETTINGS)(files[:1] + files[3:], "Portuguese", None)
    assert send_batch_to_review(store, third_session, rate, 2, "10.0.0.2").startswith("Sent 0 new clips")
    assert sum(store.counts().values()) == 3


@pytest.mark.parametrize(
    "files, message",
    [(None, "Upload audio files"), ([], "Upload audio files"), ("x.wav", "a list"), ([{"path": "/etc"}], "a list")],
)
def test_the_endpoint_refuses_what_is_not_a_list_of_uploads(models, files, message):
    with pytest.raises(gr.Error, match=message):
        BatchTranscriber(models, DEMO_SETTINGS)(files, "Portuguese", None)


def test_an_unknown_language_is_refused(models, speech_clips):
    with pytest.raises(gr.Error, match="unsupported language"):
        BatchTranscriber(models, DEMO_SETTINGS)([str(speech_clips[0][0])], "Klingon", None)
