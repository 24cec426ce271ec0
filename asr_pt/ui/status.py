"""The page's two models, loaded in the background so the page is up at once, and the status line that says,
per model, whether it is loading, ready or could not be loaded, and why."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from asr_pt.compare import BASE, FINETUNED, REFERENCE
from asr_pt.models import BASE_MODEL, FINETUNED_MODEL, ASRModel, ModelLoadError

log = logging.getLogger("asr_pt.app")

MODEL_ENV = {FINETUNED: "ASR_PT_FINETUNED_MODEL", BASE: "ASR_PT_BASE_MODEL"}
DEFAULT_MODELS = {FINETUNED: FINETUNED_MODEL, BASE: BASE_MODEL}
TITLES = {FINETUNED: "Fine-tuned", BASE: "Zero-shot base", REFERENCE: "reference"}
MAX_NEW_TOKENS = int(os.environ.get("ASR_PT_MAX_NEW_TOKENS", 512))
# What one request may cost each model: seconds of generation, and tokens per second of audio (speech needs ~7).
TIME_LIMIT = float(os.environ.get("ASR_PT_DEMO_TIME_LIMIT", 60))
TOKENS_PER_SECOND = 15.0
# A 1,000-character context is ~330 tokens of Portuguese but can be 4,000 of emoji; prompt cost grows faster than that.
MAX_CONTEXT_TOKENS = 400


class Models:
    """The page's two models, loaded in a background thread from start, so the page is up while they load."""

    def __init__(self, finetuned: ASRModel, base: ASRModel):
        self.by_side = {FINETUNED: finetuned, BASE: base}
        self._settled_callbacks: list[Callable[[], None]] = []
        self._callbacks_lock = threading.Lock()

    @classmethod
    def from_env(cls) -> Models:
        ids = [os.environ.get(MODEL_ENV[side], DEFAULT_MODELS[side]) for side in (FINETUNED, BASE)]
        return cls(*(demo_model(model_id, MAX_NEW_TOKENS) for model_id in ids))

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
        with self._callbacks_lock:
            callbacks, self._settled_callbacks = self._settled_callbacks, []
        for callback in callbacks:
            callback()

    def when_settled(self, callback: Callable[[], None]) -> None:
        """Calls `callback` once both models are loaded or failed: now, if they are."""
        with self._callbacks_lock:
            if not self.settled:
                self._settled_callbacks.append(callback)
                return
        callback()

    def status(self) -> dict[str, dict]:
        """Per side: the model id, its state ("ready", "busy", "loading" or "unavailable", with the reason) and how
        many requests wait for it, the running one included."""
        states = {}
        for side, model in self.by_side.items():
            error = model.load_error
            state = ("busy" if model.busy else "ready") if model.loaded else "unavailable" if error else "loading"
            message = explain_load_failure(side, error) if error else ""
            states[side] = {"model_id": model.model_id, "state": state, "message": message, "waiting": model.waiting}
        return states

    @property
    def settled(self) -> bool:
        return all(model.loaded or model.load_error for model in self.by_side.values())


def demo_model(model_id: str, max_new_tokens: int) -> ASRModel:
    """A model with the demo's bounds on what one request may cost."""
    return ASRModel(
        model_id,
        max_new_tokens=max_new_tokens,
        tokens_per_second=TOKENS_PER_SECOND,
        time_limit=TIME_LIMIT,
        max_context_tokens=MAX_CONTEXT_TOKENS,
    )


def explain_load_failure(side: str, error: Exception | str) -> str:
    return f"{error} To use a checkpoint folder, start the app with {MODEL_ENV[side]}=/path/to/folder."


def status_markdown(models: Models) -> str:
    """The page's status line: whether each model loaded (how busy they are is `/status`'s, which is asked live)."""
    icons = {"ready": "✅", "loading": "⏳", "unavailable": "⚠️"}
    lines = []
    for side, status in models.status().items():
        state = "ready" if status["state"] == "busy" else status["state"]
        line = f"{icons[state]} **{TITLES[side]}** `{status['model_id']}`: {state}"
        lines.append(line + (f". {status['message']}" if status["message"] else ""))
    return "\n\n".join(lines)
