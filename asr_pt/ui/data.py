"""The Data tab, for logged-in reviewers only: counts by status, both models scored against the corrections,
verdicts, agreement, the latest corrections, and the export as a zip handed to the reviewer who asked for it."""

from __future__ import annotations

import datetime
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr

from asr_pt.review.export import export_dataset
from asr_pt.review.items import STATUSES, StoreError
from asr_pt.review.scoreboard import scoreboard
from asr_pt.review.store import ReviewStore
from asr_pt.ui.handouts import Handouts
from asr_pt.ui.login import Login, refusal
from asr_pt.ui.review import VERDICT_CHOICES, VERDICT_LABELS
from asr_pt.ui.status import TITLES

STATUS_LABELS = {
    "pending": "Waiting",
    "in_review": "Being reviewed",
    "corrected": "Corrected",
    "skipped": "Skipped",
    "flagged": "Flagged",
}
PROTOCOL_LABELS = {"written": "written (the card's)", "normalized": "normalised"}
FOR_REVIEWERS = "The Data tab is for reviewers: log in on the Review tab to see it."
EXPORT_FOR_REVIEWERS = "Exports are for reviewers: log in on the Review tab first."
# Once the zip is on the button, press it for the reviewer: the browser saves the file.
SAVE_DOWNLOAD = "() => setTimeout(() => document.querySelector('#data-download')?.click(), 100)"
EXPORT_SECONDS = 10 * 60  # an export's link works this long (or until the next export, or logout)


class DataTab:
    """Counts, the live scoreboard, recent corrections, and an export for reviewers."""

    def __init__(self, store: ReviewStore, login: Login, handouts: Handouts):
        self.store, self.login, self.handouts = store, login, handouts
        self._figures: tuple[int, list] | None = None  # (store.last_change(), figures): every open page polls
        self.counts = gr.Dataframe(
            headers=[STATUS_LABELS[status] for status in STATUSES],
            label="Items by status",
            interactive=False,
            elem_id="data-counts",
        )
        self.scores = gr.Dataframe(
            headers=["protocol", "model", "WER %", "CER %"],
            label="Both models against the reviewers' corrections",
            interactive=False,
            elem_id="data-scores",
        )
        self.summary = gr.Markdown(FOR_REVIEWERS, elem_id="data-summary")  # numbers and fixed labels only
        self.recent = gr.Dataframe(
            headers=["item", "reviewer", "correction", "verdict", "when"],
            datatype="str",  # shown as text, whatever a correction holds
            label="Recent corrections",
            interactive=False,
            elem_id="data-recent",
        )
        with gr.Row():
            refresh = gr.Button("Refresh", size="sm", elem_id="data-refresh")
            export = gr.Button("Export the dataset (reviewers)", size="sm", elem_id="data-export")
        # The export is a download the browser saves at once (the button is pressed for the reviewer when the zip is
        # ready); the button stays for a second copy. It is never hidden again once shown: gradio 6.17 keeps a
        # component that starts hidden hidden for good once it got an update before its first showing (#13494).
        self.download = gr.DownloadButton(
            "Download the export again (zip: parquet, sft.jsonl, card)",
            visible=False,
            size="sm",
            elem_id="data-download",
        )
        self.timer = gr.Timer(15, active=False)  # runs only while a reviewer is logged in on the page
        self.outputs = [self.counts, self.scores, self.summary, self.recent]
        token = login.token
        refresh.click(self.figures, token, self.outputs, api_visibility="private")
        self.timer.tick(self.figures, token, self.outputs, api_visibility="private")
        token.change(self.on_login, token, self.outputs + [self.timer], api_visibility="private")
        export.click(self.export, token, self.download, api_visibility="private").success(
            None, js=SAVE_DOWNLOAD, api_visibility="private"
        )

    def figures(self, token: str | None) -> list:
        """The tab's figures for a logged-in reviewer; a visitor gets only the sentence that the tab is for reviewers.

        Recomputed only when the store changed: the scoreboard rescores every correction.
        """
        if self.login.sessions.get(token) is None:
            return [None, None, FOR_REVIEWERS, None]
        self.handouts.sweep()
        change = self.store.last_change()
        cached = self._figures
        if cached is None or cached[0] != change:
            cached = self._figures = (change, self._compute_figures())
        return cached[1]

    def on_login(self, token: str | None) -> list:
        """Figures and the timer on at login; both cleared at logout (which deletes the export, so its button
        leads nowhere after it)."""
        logged_in = self.login.sessions.get(token) is not None
        return self.figures(token) + [gr.Timer(active=logged_in)]

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
        scores = [[PROTOCOL_LABELS[protocol], TITLES[model], *rest] for protocol, model, *rest in board.rows()]
        recent = [
            [item.id, item.reviewer, item.text, VERDICT_LABELS.get(item.verdict, ""), _when(item.corrected_at)]
            for item in self.store.corrected(limit=10, newest_first=True)
        ]
        return [[[counts[status] for status in STATUSES]], scores, summary, recent]

    def export(self, token: str | None):
        """A fresh export, zipped for the reviewer who asked; their previous zip is deleted, and this one goes at
        logout or after `EXPORT_SECONDS`. Flagged items are never in it."""
        session = self.login.sessions.get(token)
        if session is None:
            raise refusal(EXPORT_FOR_REVIEWERS)
        self.handouts.take_back(session, "export")  # the last export goes even if this one finds nothing
        with tempfile.TemporaryDirectory(prefix="asr-pt-export-") as folder:
            try:
                export_dataset(self.store, Path(folder) / "dataset")
            except StoreError as error:
                raise refusal(f"Nothing exported: {error}.") from error

            def write_zip(path: Path) -> None:
                shutil.make_archive(str(path.with_suffix("")), "zip", Path(folder) / "dataset")

            name = f"asr-pt-reviews-{time.strftime('%Y%m%d-%H%M%S')}.zip"
            archive = self.handouts.give(session, "export", name, write_zip, EXPORT_SECONDS)
        return gr.DownloadButton(value=archive, visible=True)


def _when(timestamp: float | None) -> str:
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else ""
