"""Training data: written-form targets, the card's filters, and held-out data that stays held out, all counted."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import write_export

from asr_pt.audio import SAMPLE_RATE, content_hash, load_audio, write_wav
from asr_pt.corpora import CorpusError, read_examples
from asr_pt.review.store import ReviewStore
from asr_pt.text import written_form
from train.data import (
    Fingerprints,
    corrections_spec,
    counts_table,
    prepare,
    read_fingerprints,
    resolve_spec,
)


def write_audiofolder(folder: Path, rows: list[tuple[str, str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file_name", "sentence"])
        writer.writerows(rows)
    return folder


def tone(seconds: float) -> np.ndarray:
    return (0.3 * np.sin(np.linspace(0, 440 * 2 * np.pi * seconds, int(SAMPLE_RATE * seconds)))).astype(np.float32)


def test_targets_are_written_form_and_each_filter_is_counted(tmp_path, speech_clips):
    folder = tmp_path / "mixed"
    folder.mkdir()
    rows = []
    for i, (path, sentence) in enumerate(speech_clips[:3]):
        shutil.copy(path, folder / path.name)
        rows.append((path.name, sentence.lower().rstrip(".!?") if i == 0 else sentence))
    write_wav(folder / "short.wav", tone(0.2))
    write_wav(folder / "long.wav", tone(31))
    (folder / "broken.wav").write_bytes(b"RIFF not really a wave file")
    rows += [("short.wav", "Curto."), ("long.wav", "Longo."), ("broken.wav", "Partido.")]
    shutil.copy(speech_clips[3][0], folder / "silent-text.wav")
    shutil.copy(speech_clips[4][0], folder / "essay.wav")
    rows += [("silent-text.wav", "  "), ("essay.wav", "palavra " * 63)]  # 504 characters
    write_audiofolder(folder, rows)

    examples, counts = prepare([f"mixed={folder}"], progress=False)

    assert [e.text for e in examples] == [written_form(text) for _, text in rows[:3]]
    assert examples[0].text == "Bom dia, como estás."  # from "bom dia, como estás"
    assert [e.audio_hash for e in examples] == [content_hash(load_audio(p)) for p, _ in speech_clips[:3]]
    assert counts["mixed"].as_dict()["dropped"] == {
        "no text": 1,
        "too long text": 1,
        "unreadable audio": 1,
        "too short audio": 1,
        "too long audio": 1,
    }
    assert (counts["mixed"].read, counts["mixed"].kept) == (8, 3)
    assert "| mixed | 8 | 3 |" in counts_table(counts)


def test_held_out_audio_and_sentences_and_test_splits_are_dropped(tmp_path, speech_clips, common_voice_corpus):
    # The export holds all eight clips; two come from a test split, as the store marks them.
    export = write_export(tmp_path / "export", speech_clips, ["train"] * 6 + ["test", "test"])
    # Held out: Common Voice's test split (clips 0, 2, 4, 6 as MP3: other bytes, same sentences) ...
    cv_test = f"{common_voice_corpus}?split=test"
    # ... and clip 1 under another sentence, so only its audio matches.
    other = write_audiofolder(tmp_path / "other", [("x.wav", "Uma frase que não está no treino.")])
    shutil.copy(speech_clips[1][0], other / "x.wav")

    holdout = read_fingerprints([cv_test, str(other)], progress=False)
    examples, counts = prepare([corrections_spec(str(export))], holdout=holdout, progress=False)

    assert sorted(e.text for e in examples) == sorted([speech_clips[3][1], speech_clips[5][1]])
    assert counts["corrections"].as_dict()["dropped"] == {
        "test split": 2,
        "held out (same audio)": 1,
        "held out (same sentence)": 3,
    }


def test_training_data_that_is_in_the_validation_set_is_dropped(speech_clips, audiofolder_corpus, tmp_path):
    validation_folder = write_audiofolder(tmp_path / "validation", [(speech_clips[2][0].name, speech_clips[2][1])])
    shutil.copy(speech_clips[2][0], validation_folder)
    validation, _ = prepare([str(validation_folder)], progress=False)
    examples, counts = prepare([str(audiofolder_corpus)], validation=Fingerprints.of(validation), progress=False)
    assert len(examples) == 7 and speech_clips[2][1] not in [e.text for e in examples]
    assert counts[audiofolder_corpus.name].dropped == {"in validation (same audio)": 1}


def test_corrections_can_be_an_export_or_a_store(tmp_path, speech_clips):
    export = write_export(tmp_path / "export", speech_clips[:2])
    spec = corrections_spec(str(export))
    assert spec == f"corrections={export}?split=train"
    assert [e.text for e in read_examples(spec)] == [s for _, s in speech_clips[:2]]
    store = ReviewStore(tmp_path / "store")
    assert corrections_spec(str(store.data_dir)) == f"corrections=store:{store.data_dir}"
    assert corrections_spec("store:/data") == "store:/data"
    with pytest.raises(CorpusError, match="no such folder"):
        corrections_spec(str(tmp_path / "missing"))
    with pytest.raises(CorpusError, match="neither a review store"):
        corrections_spec(str(tmp_path))


def test_specs_are_recorded_with_absolute_folders(tmp_path, monkeypatch, audiofolder_corpus):
    monkeypatch.chdir(audiofolder_corpus.parent)
    assert resolve_spec(f"{audiofolder_corpus.name}?split=train") == (
        f"{audiofolder_corpus.name}-train={audiofolder_corpus}?split=train"
    )
    assert resolve_spec("mozilla-foundation/common_voice_17_0?config=pt&split=test") == (
        "common_voice_17_0-test=mozilla-foundation/common_voice_17_0?config=pt&split=test"
    )
    assert resolve_spec("c=store:data") == f"c=store:{audiofolder_corpus.parent / 'data'}"
    # Only registered schemes are schemes: an unknown `x:` prefix is a hub id (or a missing folder), kept as given.
    assert resolve_spec("x=nope:data?split=train") == "x=nope:data?split=train"
