"""The Data tab, for reviewers: counts by status, both models scored against the corrections, verdicts, agreement,
the latest corrections, and the export as a zip."""

from __future__ import annotations

import datetime
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr

from asr_pt.review.export import export_dataset
from asr_pt.review.scoreboard import scoreboard
from asr_pt.review.store import STATUSES, ReviewStore
from asr_pt.ui.review import VERDICT_CHOICES, require_reviewer


class DataTab:
    """Counts, the live scoreboard, recent corrections, and an export for reviewers."""

    def __init__(self, store: ReviewStore, reviewer: gr.State):
        self.store, self.reviewer = store, reviewer
        self._figures: tuple[int, list] | None = None  # (store.last_change(), figures): every open page polls
        self.counts = gr.Dataframe(
            headers=list(STATUSES), label="Items by status", interactive=False, elem_id="data-counts"
        )
        self.scores = gr.Dataframe(
            headers=["protocol", "model", "WER %", "CER %"],
            label="Both models against the reviewers' corrections",
            interactive=False,
            elem_id="data-scores",
        )
        self.summary = gr.Markdown(elem_id="data-summary")
        self.recent = gr.Dataframe(
            headers=["item", "reviewer", "correction", "verdict", "when"],
            label="Recent corrections",
            interactive=False,
            elem_id="data-recent",
        )
        with gr.Row():
            refresh = gr.Button("Refresh", size="sm", elem_id="data-refresh")
            export = gr.Button("Export the dataset (reviewers)", size="sm", elem_id="data-export")
        self.download = gr.File(label="Export (zip: parquet, sft.jsonl, card)", visible=False)
        outputs = [self.counts, self.scores, self.summary, self.recent]
        refresh.click(self.figures, None, outputs, api_visibility="private")
        gr.Timer(15).tick(self.figures, None, outputs, api_visibility="private")
        export.click(self.export, self.reviewer, self.download, api_visibility="private")
        self.load_outputs = outputs

    def figures(self) -> list:
        """The tab's figures, recomputed only when the store changed: the scoreboard rescores every correction."""
        change = self.store.last_change()
        cached = self._figures
        if cached is None or cached[0] != change:
            cached = self._figures = (change, self._compute_figures())
        return cached[1]

    def _compute_figures(self) -> list:
        counts = self.store.counts()
        board = scoreboard(self.store)
        verdicts = ", ".join(f"{label} **{board.verdicts[value]}**" for label, value in VERDICT_CHOICES)
        agreement = (
            f"{board.double_reviewed} items reviewed twice or more, mean WER between reviewers "
            f"**{board.mean_agreement_wer:.1f}%**"
            if board.mean_agreement_wer is not None
            else "no item has two reviews yet"
        )
        summary = f"**{board.items}** corrected items. Verdicts: {verdicts}. Agreement: {agreement}."
        recent = [
            [item.id, item.reviewer, item.text, item.verdict or "", _when(item.corrected_at)]
            for item in self.store.corrected(limit=10, newest_first=True)
        ]
        return [[[counts[status] for status in STATUSES]], board.rows(), summary, recent]

    def export(self, reviewer: str | None):
        """Zips a fresh export into the data folder's exports/, keeping only the newest zip: a Space's disk is small."""
        require_reviewer(reviewer)
        exports = self.store.data_dir / "exports"
        exports.mkdir(exist_ok=True)
        for old in exports.glob("asr-pt-reviews-*.zip"):
            old.unlink()
        with tempfile.TemporaryDirectory(prefix="asr-pt-export-") as folder:
            export_dataset(self.store, Path(folder) / "dataset")
            name = exports / f"asr-pt-reviews-{time.strftime('%Y%m%d-%H%M%S')}"
            archive = shutil.make_archive(str(name), "zip", Path(folder) / "dataset")
        return gr.File(value=archive, visible=True)


def _when(timestamp: float | None) -> str:
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else ""
