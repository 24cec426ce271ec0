"""One clip through the fine-tuned and the zero-shot model, side by side: what the demo shows and its API returns.

A model that cannot load does not stop the comparison: its side carries the reason instead of a transcript, and
only the scores that need it are left out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from asr_pt.audio import Audio, AudioError, AudioSource, duration, read_audio
from asr_pt.metrics import PROTOCOLS, Scores, align_words, score_pair
from asr_pt.models import AUTO_LANGUAGE, DEFAULT_LANGUAGE, ASRModel, ModelLoadError, Transcript, supported_languages
from asr_pt.text import normalize

FINETUNED, BASE, REFERENCE = "finetuned", "base", "reference"
# Each pair is (hypothesis, reference): the base is scored against the fine-tuned model, which makes their WER a
# measure of disagreement, and each model against the reference transcript when there is one.
PAIRS = ((BASE, FINETUNED), (FINETUNED, REFERENCE), (BASE, REFERENCE))
# A context is a few names or a sentence about the topic; a reference, what is said in a clip of minutes.
MAX_CONTEXT_CHARS = 1000
MAX_REFERENCE_CHARS = 5000


def pair_name(hypothesis: str, reference: str) -> str:
    return f"{hypothesis}_vs_{reference}"


@dataclass(frozen=True)
class ModelRun:
    """One model's side: its transcript and warnings, or why it has none."""

    model_id: str
    transcript: Transcript | None
    warnings: list[str]
    error: str | None  # the load failure, in words for the visitor


@dataclass(frozen=True)
class Comparison:
    audio_seconds: float
    audio_notes: list[str]  # what was done to the audio: resampled, down-mixed, padded
    language: str  # as asked: a language name or "auto"
    reference: str
    runs: dict[str, ModelRun]  # FINETUNED and BASE
    scores: dict[str, dict[str, Scores]]  # pair name -> protocol -> scores, for the pairs that can be scored
    diffs: dict[str, list[tuple[str, str | None]]]  # pair name -> word alignment of the normalised texts

    def to_dict(self) -> dict:
        """Plain JSON-ready data, as the demo's API returns it; each transcript also gives its real-time factor and
        its words with the model's confidence, each marked doubtful or not (`asr_pt.confidence.DOUBT_THRESHOLD`)."""
        data = dataclasses.asdict(self)
        for name, run in self.runs.items():
            if run.transcript is not None:
                data["runs"][name]["transcript"]["rtf"] = run.transcript.rtf
                data["runs"][name]["transcript"]["words"] = [
                    {"word": w.word, "confidence": w.confidence, "doubtful": w.doubtful} for w in run.transcript.words
                ]
        return data


def check_text(value: object, what: str, max_chars: int) -> str:
    """A visitor's text as the models and scores may take it: a string, valid Unicode, at most `max_chars`."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"the {what} must be text, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"the {what} holds a character that is not valid text (at position {error.start})") from None
    if len(value) > max_chars:
        raise ValueError(f"the {what} is too long: {len(value):,} characters, the limit is {max_chars:,}")
    return value


def check_language(language: object) -> str:
    """The language as asked ("" means Portuguese); raises ValueError for one qwen-asr does not know."""
    if not isinstance(language, str | None):
        raise ValueError(f"the language must be text, not {type(language).__name__}")
    language = (language or DEFAULT_LANGUAGE).strip()
    if language != AUTO_LANGUAGE and language not in supported_languages():
        raise ValueError(f"unsupported language {language!r}: use {AUTO_LANGUAGE!r} or one of {supported_languages()}")
    return language


def compare(
    audio: AudioSource | Audio,
    finetuned: ASRModel,
    base: ASRModel,
    *,
    language: str = DEFAULT_LANGUAGE,
    context: str = "",
    reference: str = "",
    max_seconds: float | None = None,
) -> Comparison:
    """Transcribes `audio` with both models and scores them against each other and against `reference`.

    `audio` is a file or a clip already read. Raises AudioError for audio that cannot be used, ValueError for an
    unknown language or a context or reference that is not text or too long, and ModelLoadError only when neither
    model can load (the message names both).
    """
    context = check_text(context, "context", MAX_CONTEXT_CHARS)
    reference = check_text(reference, "reference", MAX_REFERENCE_CHARS).strip()
    language = check_language(language)
    if audio is None or not str(audio).strip():
        raise AudioError("no audio: record a clip or upload a file first")
    clip = audio if isinstance(audio, Audio) else read_audio(audio, max_seconds=max_seconds)
    runs = {
        side: _run(model, clip.samples, language, context) for side, model in ((FINETUNED, finetuned), (BASE, base))
    }
    if all(run.error for run in runs.values()):
        raise ModelLoadError(" ".join(run.error for run in runs.values()))
    texts = {name: run.transcript.text for name, run in runs.items() if run.transcript is not None}
    if reference:
        texts[REFERENCE] = reference
    pairs = [(hyp, ref) for hyp, ref in PAIRS if hyp in texts and ref in texts]
    return Comparison(
        audio_seconds=duration(clip.samples),
        audio_notes=clip.notes,
        language=language,
        reference=reference,
        runs=runs,
        scores={
            pair_name(hyp, ref): {protocol: score_pair(texts[ref], texts[hyp], protocol) for protocol in PROTOCOLS}
            for hyp, ref in pairs
        },
        diffs={pair_name(hyp, ref): align_words(normalize(texts[ref]), normalize(texts[hyp])) for hyp, ref in pairs},
    )


def _run(model: ASRModel, samples, language: str, context: str) -> ModelRun:
    try:
        transcript = model.transcribe(samples, language=language, context=context)
    except ModelLoadError as error:
        return ModelRun(model.model_id, None, [], str(error))
    warnings = []
    if transcript.timed_out:
        warnings.append(f"stopped at the time limit of {model.time_limit:g} s: the text is probably incomplete")
    elif transcript.truncated:
        limit = model.new_token_limit(transcript.audio_seconds)
        warnings.append(f"output cut at {limit} new tokens: the text is probably incomplete")
    if not transcript.text:
        warnings.append("the model heard no speech")
    return ModelRun(model.model_id, transcript, warnings, None)
