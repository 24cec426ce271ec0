"""The Many files tab: several clips (or zips of them) through both models in batches (`asr_pt.batch`), a table,
CSV and JSONL downloads and "send all to review".

What a visitor's batch produced stays on the server, in their session's `BatchSession`: "send all to review" stores
only those rows, never values the browser sends back. The files sent and the zips unpacked are deleted as soon as
the batch is over, whatever happened; the session's folder keeps only the clips transcribed, as 16 kHz 16-bit WAV
(for "send all to review"), and the downloads, and is deleted when the next batch starts and when Gradio drops the
session.
"""

from __future__ import annotations

import csv
import json
import shutil
import weakref
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from asr_pt.audio import MAX_BYTES_PER_SECOND, AudioError, content_hash, declared_seconds, load_audio, write_wav
from asr_pt.batch import FileResult, transcribe_many
from asr_pt.compare import BASE, FINETUNED
from asr_pt.models import DEFAULT_LANGUAGE, ModelLoadError
from asr_pt.review.store import ReviewStore
from asr_pt.settings import Settings
from asr_pt.ui.clients import request_address
from asr_pt.ui.gpu import models_gpu_seconds, on_gpu
from asr_pt.ui.languages import language_choices
from asr_pt.ui.scratch import remove_leftovers, scratch_folder
from asr_pt.ui.send_to_review import SendRate
from asr_pt.ui.status import TITLES, Models, log
from asr_pt.ui.transcribe import seconds_words
from asr_pt.ui.uploads import remove_upload
from asr_pt.uploads import Upload, UploadError, gather

SESSION_SECONDS = 3600  # a session's batch is kept this long after its last use
HEADERS = ["file", "seconds", TITLES[FINETUNED], TITLES[BASE], "WER %", "flags"]
DATATYPES = ["str", "number", "str", "str", "number", "str"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets would run as a formula


class BatchSession:
    """One visitor's last batch: the files, what the models made of them, the downloads, what went to review."""

    def __init__(self):
        self.folder = scratch_folder()
        # The folder goes with the session however Gradio drops it: time to live, closing, or eviction of the
        # oldest sessions beyond its capacity (which calls no delete_callback).
        self.close = weakref.finalize(self, shutil.rmtree, self.folder, ignore_errors=True)
        self.rows: list[FileResult] = []
        self.model_ids: dict[str, str] = {}
        self.reviewed = 0  # items this session has sent to review
        self.sent = False  # this batch went to review already

    def start(self) -> Path:
        """Forget the last batch; returns an empty folder for this one's unpacked files."""
        for kind in ("batch", "clips"):
            shutil.rmtree(self.folder / kind, ignore_errors=True)
        self.clips.mkdir()
        self.rows, self.sent = [], False
        return self.folder / "batch"

    @property
    def clips(self) -> Path:
        return self.folder / "clips"

    def clip(self, index: int) -> Path:
        return clip_path(self.clips, index)


def clip_path(clips: Path, index: int) -> Path:
    """Where a batch's clip is kept for "send all to review": by its index, so a GPU worker's files are found too."""
    return clips / f"{index:04d}.wav"


class BatchTranscriber:
    """The `/transcribe_many` endpoint: both models on a visitor's files within the settings' batch limits.

    On ZeroGPU the batch is one `spaces.GPU` call, asking for the time both models take on the audio the headers
    declare: the files are checked and unpacked here, their paths go to the worker, which decodes them, writes the
    clips kept for review to the session's folder (the disk is shared, the memory is not) and hands back the rows.
    Progress then shows the GPU call as a whole: the worker's progress stays in the worker."""

    def __init__(self, models: Models, settings: Settings):
        self.models, self.settings = models, settings

        def gpu_seconds(uploads: list[Upload], language: str, clips: Path, progress: Callable | None) -> int:
            declared = sum(declared_seconds(u.path) or settings.demo_max_seconds for u in uploads if u.path)
            return models_gpu_seconds(min(declared, settings.batch_max_seconds))

        self._transcribe = on_gpu(self._transcribe_uploads, gpu_seconds, models.zero_gpu, list(models.by_side.values()))

    def _transcribe_uploads(
        self, uploads: list[Upload], language: str, clips: Path, progress: Callable[[int, int], None] | None
    ) -> list[FileResult]:
        try:
            return transcribe_many(
                uploads,
                self.models[FINETUNED],
                self.models[BASE],
                language=language,
                batch_size=self.settings.batch_size,
                max_seconds=self.settings.demo_max_seconds,
                max_total_seconds=self.settings.batch_max_seconds,
                progress=progress,
                keep=lambda index, samples: write_wav(clip_path(clips, index), samples),
            )
        except (ValueError, ModelLoadError) as error:  # a gr.Error reaches the page as it is, from a worker too
            log.info("batch refused: %s", error)
            raise gr.Error(str(error), print_exception=False) from error

    def __call__(
        self, files: list[str] | None, language: str, session: BatchSession | None, progress=None
    ) -> tuple[list[dict], BatchSession]:
        """Files and language -> one row per file; the session keeps the batch."""
        if not files:
            raise gr.Error("Upload audio files (or a zip of them) first.")
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise gr.Error("Expected a list of uploaded files.")
        session = session or BatchSession()
        folder = session.start()

        def report(done: int, total: int) -> None:
            progress(done / total, desc=f"{done} of {total} files")

        try:
            uploads = gather(
                files,
                folder,
                max_files=self.settings.batch_max_files,
                max_bytes=round(self.settings.batch_max_seconds * MAX_BYTES_PER_SECOND),
            )
            if progress is not None and self.models.zero_gpu:
                progress(0, desc=f"{len(uploads)} files on a GPU")
            plain_progress = report if progress is not None and not self.models.zero_gpu else None
            rows = self._transcribe(uploads, language, session.clips, plain_progress)
        except UploadError as error:
            log.info("batch refused: %s", error)
            raise gr.Error(str(error), print_exception=False) from error
        finally:  # what was sent and unpacked is read: it goes, refused, failed or done
            shutil.rmtree(folder, ignore_errors=True)
            for path in files:
                remove_upload(path)
        session.rows = rows
        session.model_ids = {side: self.models[side].model_id for side in (FINETUNED, BASE)}
        return [row.to_dict() for row in rows], session


def spreadsheet_safe(value: object) -> object:
    """A cell no spreadsheet runs as a formula: file names come from visitors."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def write_downloads(session: BatchSession) -> tuple[str, str]:
    """The batch as CSV and JSONL in the session's folder (Gradio serves its own copy of each)."""
    records = [row.to_dict() for row in session.rows]
    csv_path, jsonl_path = session.folder / "transcripts.csv", session.folder / "transcripts.jsonl"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]) if records else ["file"])
        writer.writeheader()
        for record in records:
            record["truncated"] = " ".join(record["truncated"])
            writer.writerow({key: spreadsheet_safe(value) for key, value in record.items()})
    with open(jsonl_path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row.to_dict(), ensure_ascii=False) + "\n" for row in session.rows)
    return str(csv_path), str(jsonl_path)


def table_rows(rows: list[FileResult]) -> list[list]:
    def flags(row: FileResult) -> str:
        cut = [f"{TITLES[side]} cut at the token limit" for side in row.truncated]
        return "; ".join(cut + ([f"⚠️ {row.error}"] if row.error else []))

    return [
        [
            row.file,
            row.audio_seconds,
            row.finetuned,
            row.base,
            None if row.wer is None else round(row.wer, 1),
            flags(row),
        ]
        for row in rows
    ]


def show_batch(session: BatchSession | None) -> tuple[list[list], str, str, str]:
    """The table, the downloads and a summary line, from the session's batch (not from the browser)."""
    if session is None or not session.rows:
        raise gr.Error("Transcribe files first.")
    failed = sum(row.audio_seconds is None for row in session.rows)
    seconds = sum(row.audio_seconds or 0 for row in session.rows)
    summary = f"**{len(session.rows) - failed}** files transcribed ({seconds:.1f} s of audio)"
    summary += f", **{failed}** could not be" if failed else ""
    return table_rows(session.rows), *write_downloads(session), summary


def send_batch_to_review(
    store: ReviewStore, session: BatchSession | None, rate: SendRate, max_review: int, visitor: str
) -> str:
    """Queue every file both models transcribed, with both texts as the models wrote them, for reviewers, within
    the session's limit (`max_review` clips) and the page's hourly limit (a fair share of it per visitor); a clip
    queued already costs nothing and is counted apart."""
    if session is None or not session.rows:
        raise gr.Error("Transcribe files first, then send them to review.")
    if session.sent:
        return "This batch is in review already. Thank you!"
    ready = [
        (session.clip(index), row)
        for index, row in enumerate(session.rows)
        if row.finetuned is not None and row.base is not None
    ]
    room = max_review - session.reviewed
    ids, queued, limited = [], 0, 0
    for clip, row in ready:
        try:
            samples = load_audio(clip)
        except AudioError:  # the file went away since it was transcribed
            continue
        if store.has_item("demo", content_hash(samples)):
            queued += 1
        elif len(ids) >= room or rate.take(visitor) > 0:
            limited += 1
        else:
            ids.append(
                store.add_item(
                    samples,
                    hypothesis_finetuned=row.finetuned,
                    hypothesis_base=row.base,
                    model_finetuned=session.model_ids[FINETUNED],
                    model_base=session.model_ids[BASE],
                )
            )
    session.sent = not limited
    session.reviewed += len(ids)
    if limited and not ids:
        raise gr.Error(
            f"No clip was sent: a visitor may send at most {max_review} clips to review and a share of the page's "
            "sends per hour; try later." + (f" {queued} were in the review queue already." if queued else "")
        )
    message = f"Sent {len(ids)} new clips to review. Thank you!"
    message += f" {queued} were in the review queue already." if queued else ""
    return message + (f" {limited} were not sent (a limit on sends was reached; try later)." if limited else "")


def batch_tab(models: Models, settings: Settings, store: ReviewStore | None, rate: SendRate) -> None:
    if removed := remove_leftovers():
        log.info("removed %d folders a previous run left in the temp folder", removed)
    gr.Markdown(
        f"Upload several clips, or a zip of them (up to {settings.batch_max_files} files, "
        f"{seconds_words(settings.demo_max_seconds)} each and {seconds_words(settings.batch_max_seconds)} in all): "
        "both models transcribe them in batches."
    )
    with gr.Row(equal_height=False):
        files = gr.File(file_count="multiple", type="filepath", label="Audio files or zips", elem_id="batch-files")
        with gr.Column():
            language = gr.Dropdown(language_choices(), value=DEFAULT_LANGUAGE, label="Language")
            button = gr.Button("Transcribe all with both models", variant="primary")
    session = gr.State(None, time_to_live=SESSION_SECONDS, delete_callback=lambda s: s and s.close())
    summary = gr.Markdown(elem_id="batch-summary")
    table = gr.Dataframe(headers=HEADERS, datatype=DATATYPES, interactive=False, wrap=True, elem_id="batch-table")
    with gr.Row():
        csv_file = gr.File(label="CSV", interactive=False, elem_id="batch-csv")
        jsonl_file = gr.File(label="JSONL", interactive=False, elem_id="batch-jsonl")
    with gr.Accordion("API result (what `/transcribe_many` returns)", open=False):
        result = gr.JSON(label="result")

    transcribe_files = BatchTranscriber(models, settings)

    def run(files, language, session, progress=gr.Progress()):  # noqa: B008 (how Gradio asks for a progress bar)
        return transcribe_files(files, language, session, progress)

    button.click(run, [files, language, session], [result, session], api_name="transcribe_many").success(
        show_batch, session, [table, csv_file, jsonl_file, summary], api_visibility="private"
    )
    if store is not None:
        with gr.Row():
            send = gr.Button("Send all to review", size="sm", elem_id="batch-send-to-review")
            message = gr.Markdown("Stores these clips and both transcripts for our reviewers to correct.")

        def send_all(session, request: gr.Request):
            visitor = request_address(request, settings.trust_proxy)
            return send_batch_to_review(store, session, rate, settings.batch_max_review, visitor)

        send.click(send_all, session, message, api_visibility="private")
