"""Word timings: the tiny aligner checkpoint, `asr_pt.alignment` on it, and the subtitles made from its output."""

import json

import numpy as np
import pytest
import srt
import webvtt
from qwen_asr import Qwen3ForcedAligner
from qwen_asr.inference.qwen3_forced_aligner import Qwen3ForceAlignProcessor

from asr_pt.alignment import MAX_TEXT_CHARS, Aligner, WordTiming, clipped, words_with_punctuation
from asr_pt.audio import AudioError, duration, load_audio, write_wav
from asr_pt.cli import main
from asr_pt.models import ModelLoadError
from asr_pt.subtitles import MAX_CUE_CHARS, cues, to_srt, to_webvtt
from asr_pt.tiny_aligner import CLASSIFY_NUM, TIMESTAMP_SEGMENT_MS, TIMESTAMP_TOKEN, TIMESTAMP_TOKEN_ID


@pytest.fixture(scope="module")
def aligner(tiny_aligner_dir) -> Aligner:
    return Aligner(str(tiny_aligner_dir))


def test_command_line_builds_an_aligner_that_qwen_asr_loads_as_one(tmp_path, speech_clips):
    main(["tiny-aligner", str(tmp_path / "aligner"), "--seed", "3"])
    config = json.loads((tmp_path / "aligner" / "config.json").read_text())
    assert config["thinker_config"]["model_type"] == "qwen3_forced_aligner"
    assert config["thinker_config"]["classify_num"] == CLASSIFY_NUM
    assert (config["timestamp_token_id"], config["timestamp_segment_time"]) == (
        TIMESTAMP_TOKEN_ID,
        TIMESTAMP_SEGMENT_MS,
    )

    loaded = Qwen3ForcedAligner.from_pretrained(str(tmp_path / "aligner"))
    assert loaded.model.thinker.lm_head.out_features == CLASSIFY_NUM  # the timestamp head, not the vocabulary
    tokenizer = loaded.processor.tokenizer
    assert tokenizer("gato" + TIMESTAMP_TOKEN * 2).input_ids[-2:] == [TIMESTAMP_TOKEN_ID] * 2
    path, sentence = speech_clips[0]
    [result] = loaded.align(audio=str(path), text=sentence, language="Portuguese")
    assert [item.text for item in result] == Qwen3ForceAlignProcessor().tokenize_space_lang(sentence)


def test_each_written_word_gets_times_inside_the_clip(aligner, speech_clips):
    path, sentence = speech_clips[1]
    words = aligner.align(path, sentence, "portuguese")  # any spelling of the language
    seconds = duration(load_audio(path))
    assert [word.word for word in words] == sentence.split()  # punctuation kept, nothing lost or added
    assert all(0 <= word.start <= word.end <= seconds for word in words)
    assert aligner.align((load_audio(path), 16000), sentence, "Portuguese") == words  # samples or a file alike
    assert words[0].to_dict() == {"word": words[0].word, "start": words[0].start, "end": words[0].end}


def test_punctuation_goes_back_to_its_word():
    split = Qwen3ForceAlignProcessor().tokenize_space_lang
    text = "« Olá, mundo — tudo bem? » 你好"
    pieces = [
        ("Olá", 0.1, 0.4),
        ("mundo", 0.5, 0.9),
        ("tudo", 1.0, 1.2),
        ("bem", 1.3, 1.6),
        ("你", 2, 2.1),
        ("好", 2.1, 2.2),
    ]
    assert [p[0] for p in pieces] == split(text)  # what the aligner times
    assert words_with_punctuation(text, pieces, split) == [
        ("« Olá,", 0.1, 0.4),
        ("mundo —", 0.5, 0.9),
        ("tudo", 1.0, 1.2),
        ("bem? »", 1.3, 1.6),
        ("你", 2, 2.1),  # a word the aligner splits keeps its pieces
        ("好", 2.1, 2.2),
    ]
    assert words_with_punctuation("... !", [], split) == []


def test_times_outside_the_clip_are_clipped():
    assert clipped("a", -0.5, 0.2, 1.0) == WordTiming("a", 0.0, 0.2)
    assert clipped("b", 311.76, 311.76, 2.083) == WordTiming("b", 2.083, 2.083)  # an untrained aligner's guess
    assert clipped("c", 0.8, 0.4, 1.0) == WordTiming("c", 0.8, 0.8)


def test_bad_input_gets_a_clear_message(aligner, speech_clips, tmp_path):
    path, sentence = speech_clips[0]
    with pytest.raises(ValueError, match="too long to time"):
        aligner.align(path, "palavra " * MAX_TEXT_CHARS, "Portuguese")
    with pytest.raises(ValueError, match="no text to time"):
        aligner.align(path, "   ", "Portuguese")
    with pytest.raises(ValueError, match="transcript's language.*'Klingon'"):
        aligner.align(path, sentence, "Klingon")
    with pytest.raises(ValueError, match="transcript's language.*'auto'"):
        aligner.align(path, sentence, "auto")
    with pytest.raises(AudioError, match="too long.*limit is 1 s"):
        aligner.align(path, sentence, "Portuguese", max_seconds=1)
    long_clip = tmp_path / "long.wav"
    write_wav(long_clip, np.zeros(181 * 16000, dtype=np.float32))
    with pytest.raises(AudioError, match="limit is 180 s"):  # qwen-asr aligns at most 180 s at once
        aligner.align(long_clip, sentence, "Portuguese")
    (tmp_path / "noise.wav").write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match="not readable audio"):
        aligner.align(tmp_path / "noise.wav", sentence, "Portuguese")
    assert aligner.align(path, "« ... »", "Portuguese") == []  # punctuation only: nothing to time


def test_an_aligner_that_cannot_load_says_why_and_how_to_get_one(tmp_path, speech_clips):
    missing = Aligner(str(tmp_path / "nowhere"))
    with pytest.raises(ModelLoadError, match="no folder.*tiny-aligner DIR") as first:
        missing.align(speech_clips[0][0], "olá", "Portuguese")
    with pytest.raises(ModelLoadError) as again:  # remembered, not retried
        missing.load()
    assert again.value is first.value and missing.load_error is first.value and not missing.loaded


def test_subtitles_round_trip_through_srt_and_webvtt_readers():
    words = [
        WordTiming("Olá,", 0.1, 0.4),
        WordTiming("<b>mundo</b>", 0.5, 0.9),
        WordTiming("&", 1.0, 1.1),
        WordTiming("-->", 1.1, 1.2),
        WordTiming("fim.", 1.3, 1.5),
        WordTiming("Outra", 2.0, 2.5),
        WordTiming("frase", 2.6, 3.0),
    ]
    [first, second] = list(srt.parse(to_srt(words)))
    assert (first.content, first.start.total_seconds(), first.end.total_seconds()) == (
        "Olá, <b>mundo</b> & --> fim.",  # a sentence ends its cue
        0.1,
        1.5,
    )
    assert (second.content, second.start.total_seconds(), second.end.total_seconds()) == ("Outra frase", 2.0, 3.0)

    vtt = to_webvtt(words)
    assert "<b>" not in vtt and "&lt;b&gt;mundo&lt;/b&gt; &amp; --&gt; fim." in vtt  # text, never markup
    captions = webvtt.from_string(vtt).captions
    assert [(c.start, c.end) for c in captions] == [("00:00:00.100", "00:00:01.500"), ("00:00:02.000", "00:00:03.000")]
    assert to_srt([]) == "" and to_webvtt([]).strip() == "WEBVTT"


def test_cues_stay_short():
    words = [WordTiming(f"palavra{i}", i * 0.3, i * 0.3 + 0.2) for i in range(40)]
    grouped = cues(words)
    assert " ".join(cue.text for cue in grouped) == " ".join(word.word for word in words)
    assert all(len(cue.text) <= MAX_CUE_CHARS for cue in grouped)
    assert all(cue.end - cue.start <= 6 for cue in grouped)
    assert cues([WordTiming("a", 1, 1)])[0].end == 1  # a word without length keeps its cue (SRT writers drop some)
    assert "00:00:01,000 --> 00:00:01,000" in to_srt([WordTiming("a", 1, 1)])
