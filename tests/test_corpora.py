import pytest

from asr_pt.audio import load_audio
from asr_pt.corpora import CorpusError, parse_spec, read_examples


def test_spec_syntax():
    spec = parse_spec("cv17=mozilla-foundation/common_voice_17_0?config=pt&split=test")
    assert (spec.name, spec.source, spec.options) == (
        "cv17",
        "mozilla-foundation/common_voice_17_0",
        {"config": "pt", "split": "test"},
    )
    assert parse_spec("data/cv/pt?split=dev").name == "pt-dev"
    assert parse_spec("/a/b/folder").name == "folder"


def test_audiofolder(audiofolder_corpus, speech_clips):
    examples = list(read_examples(str(audiofolder_corpus)))
    assert [(e.id, e.text) for e in examples] == [(p.name, s) for p, s in speech_clips]
    assert load_audio(examples[0].audio).size > 0
    assert examples[0].corpus == audiofolder_corpus.name and not examples[0].is_test


def test_audiofolder_jsonl_and_transcription_column(tmp_path, speech_clips):
    import json
    import shutil

    path, sentence = speech_clips[0]
    shutil.copy(path, tmp_path / "a.wav")
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "a.wav", "transcription": sentence}) + "\n")
    [example] = read_examples(f"mine={tmp_path}")
    assert (example.id, example.text, example.corpus) == ("a.wav", sentence, "mine")


def test_common_voice_folder_reads_the_split_and_marks_test(common_voice_corpus, speech_clips):
    test = list(read_examples(f"{common_voice_corpus}?split=test"))
    train = list(read_examples(f"{common_voice_corpus}?split=train"))
    assert [e.text for e in test] == [s for _, s in speech_clips[0::2]]
    assert [e.text for e in train] == [s for _, s in speech_clips[1::2]]
    assert all(e.is_test for e in test) and not any(e.is_test for e in train)
    assert test[0].id == "common_voice_pt_1000.mp3"
    assert load_audio(test[0].audio).size > 8000  # the MP3 decodes


def test_hub_spec_goes_through_load_dataset(parquet_corpus, speech_clips):
    """The Hub cannot be reached here: a local repository of parquet files takes the same load_dataset path."""
    examples = list(read_examples(f"hub={parquet_corpus}?split=test", limit=3))
    assert [e.text for e in examples] == [s for _, s in speech_clips[:3]]
    assert isinstance(examples[0].audio, bytes) and examples[0].is_test
    assert load_audio(examples[0].audio) == pytest.approx(load_audio(speech_clips[0][0]))


def test_saved_to_disk(parquet_corpus, speech_clips):
    examples = list(read_examples(str(parquet_corpus / "saved")))
    assert len(examples) == len(speech_clips) and examples[-1].text == speech_clips[-1][1]


def test_bad_specs_say_what_is_wrong(tmp_path, common_voice_corpus):
    with pytest.raises(CorpusError, match="no dev.tsv"):
        list(read_examples(f"{common_voice_corpus}?split=dev"))
    with pytest.raises(CorpusError, match="could not load dataset"):
        list(read_examples(str(tmp_path / "nothing-here")))
    (tmp_path / "metadata.csv").write_text("file_name,label\na.wav,x\n")
    with pytest.raises(CorpusError, match="sentence"):
        list(read_examples(str(tmp_path)))


def test_two_local_folders_of_the_same_name_with_a_dataset_card_are_not_confused(tmp_path, speech_clips):
    """datasets caches a folder whose README declares `configs:` by its name and file pattern only (the review
    store's export has such a card): a second export named alike must not read back the first one's rows."""
    from conftest import write_export

    card = "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*\n---\n"
    texts = []
    for clips, parent in ((speech_clips[:2], "first"), (speech_clips[2:5], "second")):
        export = write_export(tmp_path / parent / "export", clips)
        (export / "README.md").write_text(card, encoding="utf-8")
        texts.append([e.text for e in read_examples(f"{export}?split=train")])
    assert texts == [[s for _, s in speech_clips[:2]], [s for _, s in speech_clips[2:5]]]
