"""The examples a fine-tuning round trains on: every source read the same way, filtered, and held-out data kept out.

Targets are the written form of each transcript (the model card's rule, `asr_pt.text.written_form`). Clips of 0.3-30
s with transcripts of at most 500 characters are kept, as in the round that produced the model card. An example is
dropped, and counted, when its split is a test split, or when its audio (content hash) or its written-form sentence
appears in a held-out set, or in the validation set the best checkpoint is chosen on.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from asr_pt.audio import AudioError, content_hash, load_audio
from asr_pt.corpora import CorpusError, Example, Spec, parse_spec, read_examples, resolved_source
from asr_pt.markdown import table
from asr_pt.review.store import DB_NAME  # importing the store registers the `store:` scheme with the corpus readers
from asr_pt.text import written_form

MIN_SECONDS = 0.3
MAX_SECONDS = 30.0
MAX_CHARACTERS = 500

# Why an example was left out, in the order the checks run.
DROP_REASONS = (
    "test split",
    "no text",
    "too long text",
    "unreadable audio",
    "too short audio",
    "too long audio",
    "held out (same audio)",
    "held out (same sentence)",
    "in validation (same audio)",
    "in validation (same sentence)",
)


@dataclass(frozen=True)
class TrainingExample:
    id: str
    audio: str | bytes  # as the corpus gives it; the collator decodes it again per batch (memory stays flat)
    text: str  # the written form
    corpus: str
    seconds: float
    audio_hash: str


@dataclass
class SourceCounts:
    """How many examples a source gave and where each that was dropped went."""

    read: int = 0
    kept: int = 0
    seconds: float = 0.0
    dropped: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "read": self.read,
            "kept": self.kept,
            "hours": round(self.seconds / 3600, 4),
            "dropped": {reason: self.dropped[reason] for reason in DROP_REASONS if self.dropped[reason]},
        }


@dataclass(frozen=True)
class Fingerprints:
    """The audio hashes and written-form sentences of a set that training must not see."""

    hashes: frozenset[str] = frozenset()
    sentences: frozenset[str] = frozenset()

    @classmethod
    def of(cls, examples: Iterable[TrainingExample | Example]) -> Fingerprints:
        hashes, sentences = set(), set()
        for example in examples:
            if isinstance(example, TrainingExample):
                hashes.add(example.audio_hash)
                sentences.add(example.text)
                continue
            try:
                hashes.add(content_hash(load_audio(example.audio, max_seconds=None)))
            except AudioError:
                pass  # unreadable audio can only be matched by its sentence
            if example.text.strip():
                sentences.add(written_form(example.text))
        return cls(frozenset(hashes), frozenset(sentences))

    def __or__(self, other: Fingerprints) -> Fingerprints:
        return Fingerprints(self.hashes | other.hashes, self.sentences | other.sentences)


def resolve_spec(spec: str) -> str:
    """The SPEC with its name written out and its source resolved (`resolved_source`), as the training record names
    it: the counts are keyed by that name, and eval compares the source to tell held-out data from trained-on data."""
    parsed = parse_spec(spec)
    query = "&".join(f"{key}={value}" for key, value in parsed.options.items())
    return f"{parsed.name}={resolved_source(parsed)}" + (f"?{query}" if query else "")


def corrections_spec(path: str) -> str:
    """The SPEC of the reviewers' corrections: the review store's data folder, or a folder it exported."""
    if path.startswith("store:"):
        return path
    folder = Path(path).expanduser()
    if (folder / DB_NAME).is_file():
        return f"corrections=store:{folder}"
    if any((folder / "data").glob("*.parquet")):
        return f"corrections={folder}?split=train"  # the export's one split (data/train-00000-of-00001.parquet)
    if not folder.is_dir():
        raise CorpusError(f"--corrections {path}: there is no such folder (give a review store or its export)")
    raise CorpusError(
        f"--corrections {path}: neither a review store ({DB_NAME}) nor an export of one (data/*.parquet) is there"
    )


def _seconds(audio: str | bytes) -> float:
    """The clip's length from its header, before decoding (decoding pads clips shorter than 0.5 s)."""
    try:
        info = sf.info(io.BytesIO(audio) if isinstance(audio, bytes) else audio)
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioError(f"not readable audio: {error}") from error
    return info.frames / info.samplerate


def _why_dropped(example: Example, text: str, excluded: dict[str, Fingerprints]) -> tuple[str | None, float, str]:
    if example.is_test:
        return "test split", 0.0, ""
    if not text:
        return "no text", 0.0, ""
    if len(text) > MAX_CHARACTERS:
        return "too long text", 0.0, ""
    try:
        seconds = _seconds(example.audio)
        if seconds < MIN_SECONDS:
            return "too short audio", seconds, ""
        if seconds > MAX_SECONDS:
            return "too long audio", seconds, ""
        audio_hash = content_hash(load_audio(example.audio, max_seconds=None))
    except AudioError:
        return "unreadable audio", 0.0, ""
    for name, fingerprints in excluded.items():
        if audio_hash in fingerprints.hashes:
            return f"{name} (same audio)", seconds, audio_hash
        if text in fingerprints.sentences:
            return f"{name} (same sentence)", seconds, audio_hash
    return None, seconds, audio_hash


def prepare(
    specs: Iterable[str | Spec],
    *,
    holdout: Fingerprints = Fingerprints(),
    validation: Fingerprints = Fingerprints(),
    limit: int | None = None,
    progress: bool = True,
) -> tuple[list[TrainingExample], dict[str, SourceCounts]]:
    """The kept examples of every source, in order, and per source what was read, kept and dropped (and why)."""
    examples: list[TrainingExample] = []
    counts: dict[str, SourceCounts] = {}
    excluded = {"held out": holdout, "in validation": validation}
    for spec in specs:
        spec = parse_spec(spec) if isinstance(spec, str) else spec
        source = counts.setdefault(spec.name, SourceCounts())
        for example in tqdm(read_examples(spec, limit), desc=f"preparing {spec.name}", disable=not progress):
            source.read += 1
            text = written_form(example.text) if example.text.strip() else ""
            reason, seconds, audio_hash = _why_dropped(example, text, excluded)
            if reason:
                source.dropped[reason] += 1
                continue
            source.kept += 1
            source.seconds += seconds
            examples.append(TrainingExample(example.id, example.audio, text, spec.name, seconds, audio_hash))
    return examples, counts


def read_fingerprints(specs: Iterable[str], progress: bool = True) -> Fingerprints:
    """Fingerprints of every example of the SPECs, whatever its split, length or text."""
    fingerprints = Fingerprints()
    for spec in specs:
        examples: Iterator[Example] = read_examples(spec)
        fingerprints |= Fingerprints.of(tqdm(examples, desc=f"reading held-out {spec}", disable=not progress))
    return fingerprints


def counts_table(counts: dict[str, SourceCounts]) -> str:
    """A Markdown table of the counts per source: read, kept, hours and each reason for dropping."""
    reasons = [reason for reason in DROP_REASONS if any(c.dropped[reason] for c in counts.values())]
    rows = [
        [name, c.read, c.kept, f"{c.seconds / 3600:.2f}", *(c.dropped[reason] for reason in reasons)]
        for name, c in counts.items()
    ]
    return table(["source", "read", "kept", "hours", *reasons], rows)
