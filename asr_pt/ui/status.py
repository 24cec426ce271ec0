"""The page's two models, loaded in the background so the page is up at once, and the status line that says,
per model, whether it is loading, ready or could not be loaded (and why), in what dtype, on what device, and how much
memory its weights hold."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from asr_pt.audio import load_audio
from asr_pt.compare import BASE, FINETUNED, REFERENCE
from asr_pt.models import (
    SERVING_CPU_DTYPE,
    ASRModel,
    ModelLoadError,
    default_device,
    default_dtype,
)
from asr_pt.settings import Settings, fields_env

log = logging.getLogger("asr_pt.app")

MODEL_ENV = {FINETUNED: fields_env("finetuned_model"), BASE: fields_env("base_model")}
TITLES = {FINETUNED: "Fine-tuned", BASE: "Zero-shot base", REFERENCE: "reference"}
# What one request may cost each model: tokens per second of audio (speech needs ~7), besides the settings' token
# and time limits.
TOKENS_PER_SECOND = 15.0
# A 1,000-character context is ~330 tokens of Portuguese but can be 4,000 of emoji; prompt cost grows faster than that.
MAX_CONTEXT_TOKENS = 400


class Models:
    """The page's two models, loaded in a background thread from start, so the page is up while they load.

    With a `warm_up` clip, each model transcribes it once loaded: the first run of a model is the slowest, and its
    time gives the page a measured real-time factor to tell visitors how long they will wait. With `zero_gpu`, the
    tabs run them only inside `spaces.GPU` calls (`asr_pt.ui.gpu`), and there is no warm-up: it would run outside one.
    """

    def __init__(self, finetuned: ASRModel, base: ASRModel, warm_up: Path | None = None, zero_gpu: bool = False):
        self.by_side = {FINETUNED: finetuned, BASE: base}
        self.warm_up = None if zero_gpu else warm_up
        self.zero_gpu = zero_gpu
        self._settled_callbacks: list[Callable[[], None]] = []
        self._callbacks_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, warm_up: Path | None = None) -> Models:
        """The models the settings name, in int8 on a CPU unless ASR_PT_DTYPE says otherwise (README, Real size)."""
        dtype = default_dtype(default_device(), SERVING_CPU_DTYPE, settings.dtype)
        ids = (settings.finetuned_model, settings.base_model)
        return cls(*(demo_model(model_id, settings, dtype) for model_id in ids), warm_up, settings.zero_gpu)

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
                log.info("%s model ready: %s (%s on %s)", TITLES[side], model.model_id, model.dtype, model.device)
            except ModelLoadError as error:
                log.error("%s model unavailable. %s", TITLES[side], explain_load_failure(side, error))
        with self._callbacks_lock:
            callbacks, self._settled_callbacks = self._settled_callbacks, []
        for callback in callbacks:
            callback()
        for side, model in self.by_side.items():
            if self.warm_up is not None and model.loaded:
                model.transcribe(load_audio(self.warm_up))
                log.info("%s model warmed up: real-time factor %.2f", TITLES[side], model.measured_rtf)

    def when_settled(self, callback: Callable[[], None]) -> None:
        """Calls `callback` once both models are loaded or failed: now, if they are."""
        with self._callbacks_lock:
            if not self.settled:
                self._settled_callbacks.append(callback)
                return
        callback()

    def status(self) -> dict[str, dict]:
        """Per side: the model id, its state ("ready", "busy", "loading" or "unavailable", with the reason), how
        many requests wait for it (the running one included), its dtype and device, the memory its weights hold
        (GB, once loaded) and its measured real-time factor (once it ran)."""
        states = {}
        for side, model in self.by_side.items():
            error = model.load_error
            state = ("busy" if model.busy else "ready") if model.loaded else "unavailable" if error else "loading"
            message = explain_load_failure(side, error) if error else ""
            weights = model.weight_bytes
            states[side] = {
                "model_id": model.model_id,
                "state": state,
                "message": message,
                "waiting": model.waiting,
                "dtype": model.dtype,
                "device": model.device,
                "weights_gb": round(weights / 1e9, 2) if weights is not None else None,
                "rtf": model.measured_rtf,
            }
        return states

    def wait_estimate(self, audio_seconds: float) -> float | None:
        """Seconds both models should take on a clip this long, on CPU, from their measured real-time factors."""
        loaded = [model for model in self.by_side.values() if model.loaded]
        if not loaded or any(model.device != "cpu" or model.measured_rtf is None for model in loaded):
            return None
        return sum(model.measured_rtf for model in loaded) * audio_seconds

    @property
    def settled(self) -> bool:
        return all(model.loaded or model.load_error for model in self.by_side.values())


def demo_model(model_id: str, settings: Settings, dtype: str | None = None) -> ASRModel:
    """A model with the demo's bounds on what one request may cost."""
    return ASRModel(
        model_id,
        dtype=dtype,
        max_new_tokens=settings.max_new_tokens,
        tokens_per_second=TOKENS_PER_SECOND,
        time_limit=settings.demo_time_limit,
        max_context_tokens=MAX_CONTEXT_TOKENS,
        int8_cache=settings.int8_cache_dir.expanduser(),  # a restart reads the int8 weights, not quantising again
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
        if status["weights_gb"] is not None:
            line += f" ({status['dtype']} on {status['device']}, weights {status['weights_gb']:.1f} GB)"
        lines.append(line + (f". {status['message']}" if status["message"] else ""))
    return "\n\n".join(lines)
