"""The Explorer tab, for reviewers: open an eval output folder, sort and filter its utterances, open one (audio,
reference, both hypotheses and their diffs) and send the ones where the models fail to the review queue.

The work is done by `asr_pt.explore`; this module only wires it to the page. Every callback looks the page's login
token up in the server's reviewer sessions (`asr_pt.ui.login`) first; the folder is one the server listed, the rows
are the server's own view, and audio is decoded on the server from a clip the opened eval references (no folder is
added to `allowed_paths`).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from asr_pt.audio import SAMPLE_RATE
from asr_pt.explore import ROWS_SHOWN, EvalView, ExploreError, eval_folders, filter_table, open_eval, open_utterance
from asr_pt.explore import send_to_review as queue_utterances
from asr_pt.review.store import ReviewStore
from asr_pt.ui.diffs import DIFF_COLORS, spaced
from asr_pt.ui.login import Login, refusal

ANY_SLICE = "(all)"


class ExplorerTab:
    """The tab's components and callbacks for one review store and the page's reviewer login."""

    def __init__(self, store: ReviewStore, login: Login, root: Path):
        """`root`: the folder of eval runs (ASR_PT_EVAL_DIR) whose subfolders the tab lists."""
        self.store, self.login, self.token, self.root = store, login, login.token, root
        self.view = gr.State(None)  # the opened EvalView
        self.shown = gr.State([])  # the keys of the table's rows, in order
        self.current = gr.State(None)  # the key of the utterance on screen
        self.selected = gr.State([])  # the keys chosen to send to review
        with gr.Row():
            self.folder = gr.Dropdown(label="Eval output folder", choices=[], elem_id="explorer-folder", scale=3)
            refresh = gr.Button("Refresh the list", size="sm", scale=1)
            open_button = gr.Button("Open", variant="primary", elem_id="explorer-open", scale=1)
        self.summary = gr.Textbox(label="Eval", interactive=False, lines=2, elem_id="explorer-summary")
        with gr.Row():
            self.worse = gr.Checkbox(label="Fine-tune worse than base", elem_id="explorer-worse")
            self.threshold = gr.Number(
                label="Fine-tune WER above (%), 0 for any", value=0, minimum=0, elem_id="explorer-threshold"
            )
            self.slice = gr.Dropdown(label="Slice", choices=[ANY_SLICE], value=ANY_SLICE, elem_id="explorer-slice")
            self.sort = gr.Dropdown(label="Sort by (largest first)", choices=[], elem_id="explorer-sort")
        self.count = gr.Textbox(label="Shown", interactive=False, elem_id="explorer-count")
        self.table = gr.Dataframe(interactive=False, wrap=True, elem_id="explorer-table", max_height=400)
        with gr.Row():
            with gr.Column(scale=2):
                self.audio = gr.Audio(label="Clip", type="numpy", interactive=False, elem_id="explorer-audio")
                self.audio_problem = gr.Textbox(label="Audio", interactive=False, elem_id="explorer-audio-problem")
                self.reference = gr.Textbox(label="Reference", interactive=False, elem_id="explorer-reference")
                self.hypotheses = [
                    gr.Textbox(label=f"Hypothesis {side}", interactive=False, elem_id=f"explorer-hyp-{side}")
                    for side in ("baseline", "candidate")
                ]
                self.diffs = [
                    gr.HighlightedText(
                        label=f"Diff {side} (normalised)", color_map=DIFF_COLORS, elem_id=f"explorer-diff-{side}"
                    )
                    for side in ("baseline", "candidate")
                ]
            with gr.Column(scale=1):
                choose = gr.Button("Add this utterance to the selection", elem_id="explorer-choose")
                choose_all = gr.Button("Select every row shown", elem_id="explorer-choose-all")
                clear = gr.Button("Clear the selection", size="sm")
                self.selection = gr.Textbox(label="Selected", interactive=False, lines=4, elem_id="explorer-selected")
                send = gr.Button("Send the selected rows to review", variant="primary", elem_id="explorer-send")
                self.sent = gr.Textbox(label="Review queue", interactive=False, elem_id="explorer-sent")

        filters = [self.view, self.worse, self.threshold, self.slice, self.sort]
        table_outputs = [self.table, self.shown, self.count]
        private = {"api_visibility": "private"}
        refresh.click(self.folders, self.token, self.folder, **private)
        open_button.click(
            self.open,
            [self.token, self.folder],
            [self.view, self.summary, self.slice, self.sort, *table_outputs, self.selected, self.selection],
            **private,
        )
        for control in (self.worse, self.threshold, self.slice, self.sort):
            control.change(self.filter, [self.token, *filters], table_outputs, **private)
        details = [self.current, self.audio, self.audio_problem, self.reference, *self.hypotheses, *self.diffs]
        self.table.select(self.open_row, [self.token, self.view, self.shown], details, **private)
        choose.click(self.choose, [self.token, self.selected, self.current], [self.selected, self.selection], **private)
        choose_all.click(
            self.choose_all, [self.token, self.selected, self.shown], [self.selected, self.selection], **private
        )
        clear.click(self.clear, self.token, [self.selected, self.selection], **private)
        send.click(self.send, [self.token, self.view, self.selected], [self.sent], **private)

    def folders(self, token: str | None):
        self.login.require(token)
        return gr.Dropdown(choices=list(eval_folders(self.root)))

    def open(self, token: str | None, name: str | None) -> list:
        """Opens the eval folder the server listed under `name`."""
        self.login.require(token)
        folder = eval_folders(self.root).get(name or "")
        if folder is None:
            raise refusal("Choose one of the listed eval folders (Refresh the list if it is new).")
        try:
            view = open_eval(folder)
        except ExploreError as error:
            raise gr.Error(str(error)) from error
        sort_choices = [c for c in view.table.columns if c.startswith(("WER", "Δ")) or c == "seconds"]
        table = self._table(view, filter_table(view))
        return [
            view,
            view.summary(),
            gr.Dropdown(choices=[ANY_SLICE, *view.slice_choices()], value=ANY_SLICE),
            gr.Dropdown(choices=sort_choices, value=sort_choices[-1]),
            *table,
            [],
            "",
        ]

    def filter(self, token: str | None, view: EvalView | None, worse: bool, threshold, slice_value, sort) -> list:
        self.login.require(token)
        if view is None:
            return [gr.skip()] * 3
        try:
            shown = filter_table(
                view,
                worse_only=bool(worse),
                wer_above=float(threshold) if threshold and float(threshold) > 0 else None,
                slice_value=None if slice_value in (None, ANY_SLICE) else slice_value,
                sort_by=sort,
            )
        except ExploreError as error:
            raise gr.Error(str(error)) from error
        return self._table(view, shown)

    @staticmethod
    def _table(view: EvalView, shown) -> list:
        count = f"{len(shown)} of {len(view.table)} utterances" + (
            f" (the first {ROWS_SHOWN} in the table)" if len(shown) > ROWS_SHOWN else ""
        )
        head = shown.head(ROWS_SHOWN)
        return [head.reset_index(drop=True), list(head.index), count]

    def open_row(self, token: str | None, view: EvalView | None, shown: list[str], event: gr.SelectData) -> list:
        self.login.require(token)
        row = event.index[0] if isinstance(event.index, list | tuple) else event.index
        if view is None or not isinstance(row, int) or not 0 <= row < len(shown):
            raise gr.Error("That row is not in the table any more; open the folder again.")
        utterance = open_utterance(view, shown[row])
        sides = [view.baseline, view.candidate or view.baseline]
        return [
            utterance.key,
            None if utterance.audio is None else (SAMPLE_RATE, utterance.audio),
            utterance.audio_problem or "playable",
            utterance.reference,
            *(gr.Textbox(value=utterance.hypotheses.get(m, ""), label=f"Hypothesis · {m}") for m in sides),
            *(gr.HighlightedText(value=spaced(utterance.diffs.get(m, [])), label=f"Diff · {m}") for m in sides),
        ]

    def choose(self, token: str | None, selected: list[str], current: str | None) -> list:
        self.login.require(token)
        chosen = list(dict.fromkeys([*selected, *([current] if current else [])]))
        return [chosen, "\n".join(chosen)]

    def choose_all(self, token: str | None, selected: list[str], shown: list[str]) -> list:
        self.login.require(token)
        chosen = list(dict.fromkeys([*selected, *shown]))
        return [chosen, "\n".join(chosen)]

    def clear(self, token: str | None) -> list:
        self.login.require(token)
        return [[], ""]

    def send(self, token: str | None, view: EvalView | None, selected: list[str]) -> str:
        self.login.require(token)
        if view is None or not selected:
            raise gr.Error("Select the rows to send first.")
        return queue_utterances(view, selected, self.store).message()
