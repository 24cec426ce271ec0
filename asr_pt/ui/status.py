"""The page's two models, loaded in the background so the page is up at once, and the status line that says,
per model, whether it is loading, ready or could not be loaded, and why."""

from __future__ import annotations

import logging
import os
import threading

from asr_pt.compare import BASE, FINETUNED, REFERENCE
from asr_pt.models import BASE_MODEL, FINETUNED_MODEL, ASRModel, ModelLoadError

log = logging.getLogger("asr_pt.app")

MODEL_ENV = {FINETUNED: "ASR_PT_FINETUNED_MODEL", BASE: "ASR_PT_BASE_MODEL"}
DEFAULT_MODELS = {FINETUNED: FINETUNED_MODEL, BASE: BASE_MODEL}
TITLES = {FINETUNED: "Fine-tuned", BASE: "Zero-shot base", REFERENCE: "reference"}
MAX_NEW_TOKENS = int(os.environ.get("ASR_PT_MAX_NEW_TOKENS", 512))


class Models:
    """The page's two models, loaded in a background thread from start, so the page is up while they load."""

    def __init__(self, finetuned: ASRModel, base: ASRModel):
        self.by_side = {FINETUNED: finetuned, BASE: base}

    @classmethod
    def from_env(cls) -> Models:
        ids = [os.environ.get(MODEL_ENV[side], DEFAULT_MODELS[side]) for side in (FINETUNED, BASE)]
        return cls(*(ASRModel(model_id, max_new_tokens=MAX_NEW_TOKENS) for model_id in ids))

    def __getitem__(self, side: str) -> ASRModel:
        return self.by_side[side]

    def load_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.load, name="load-models", daemon=True)
        thread.start()
        return thread

    def load(self) -> None:
        for side, model in self.by_side.items():
            try:
                model.load()
                log.info("%s model ready: %s", TITLES[side], model.model_id)
            except ModelLoadError as error:
                log.error("%s model unavailable. %s", TITLES[side], explain_load_failure(side, error))

    def status(self) -> dict[str, dict[str, str]]:
        """Per side: the model id and its state, "ready", "loading" or "unavailable" (with the reason)."""
        states = {}
        for side, model in self.by_side.items():
            error = model.load_error
            state = "ready" if model.loaded else "unavailable" if error else "loading"
            message = explain_load_failure(side, error) if error else ""
            states[side] = {"model_id": model.model_id, "state": state, "message": message}
        return states

    @property
    def settled(self) -> bool:
        return all(model.loaded or model.load_error for model in self.by_side.values())


def explain_load_failure(side: str, error: Exception | str) -> str:
    return f"{error} To use a checkpoint folder, start the app with {MODEL_ENV[side]}=/path/to/folder."


def status_markdown(models: Models) -> str:
    icons = {"ready": "✅", "loading": "⏳", "unavailable": "⚠️"}
    lines = []
    for side, status in models.status().items():
        line = f"{icons[status['state']]} **{TITLES[side]}** `{status['model_id']}`: {status['state']}"
        lines.append(line + (f". {status['message']}" if status["message"] else ""))
    return "\n\n".join(lines)
