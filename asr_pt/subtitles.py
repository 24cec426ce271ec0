"""Subtitles from word timings: words grouped into short cues, written as SubRip (`srt`) or WebVTT (`webvtt-py`)."""

from __future__ import annotations

import datetime
import html
from collections.abc import Sequence
from dataclasses import dataclass

import srt
import webvtt

from asr_pt.alignment import WordTiming

MAX_CUE_CHARS = 42  # one line of a subtitle, as broadcasters set it
MAX_CUE_SECONDS = 6.0
SENTENCE_END = (".", "!", "?", "…")


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def cues(words: Sequence[WordTiming]) -> list[Cue]:
    """Consecutive words in cues of one line at most and a few seconds at most; a sentence ends its cue."""
    groups: list[list[WordTiming]] = []
    for word in words:
        group = groups[-1] if groups else None
        if (
            group is None
            or group[-1].word.endswith(SENTENCE_END)
            or len(" ".join(w.word for w in group + [word])) > MAX_CUE_CHARS
            or word.end - group[0].start > MAX_CUE_SECONDS
        ):
            groups.append([word])
        else:
            group.append(word)
    return [Cue(group[0].start, group[-1].end, " ".join(w.word for w in group)) for group in groups]


def to_srt(words: Sequence[WordTiming]) -> str:
    """SubRip text. SRT has no escapes: the words are written as they are."""
    subtitles = [
        srt.Subtitle(index, _timedelta(cue.start), _timedelta(cue.end), cue.text)
        for index, cue in enumerate(cues(words), start=1)
    ]
    return srt.compose(subtitles, reindex=False)  # reindexing drops cues that start where they end; WebVTT keeps them


def to_webvtt(words: Sequence[WordTiming]) -> str:
    """WebVTT text; `<` and `&` are written as character references, as WebVTT requires for text."""
    captions = [
        webvtt.Caption(_vtt_time(cue.start), _vtt_time(cue.end), html.escape(cue.text, quote=False))
        for cue in cues(words)
    ]
    return webvtt.WebVTT(captions=captions).content


def _timedelta(seconds: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=seconds)


def _vtt_time(seconds: float) -> str:
    return srt.timedelta_to_srt_timestamp(_timedelta(seconds)).replace(",", ".")
