"""Model work as ZeroGPU runs it: each call in a GPU worker process, with everything the page needs handed back.

On a ZeroGPU Space (`Settings.zero_gpu`, decided as `spaces` decides it) `spaces.GPU` runs each call in a process
forked from the app, reused while idle, pickling the arguments and the result; CUDA is lent only there, and nothing
the worker changes comes back. So a callback checks who calls and reads its inputs in the main process, passes the
worker plain data (arrays, texts, ids) and gets back all it shows. While the call lasts, the main process counts it as
waiting for each model it uses (`/status`), and it records the real-time factors the worker measured. Elsewhere the
function is called as it is.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Sequence
from typing import TypeVar

from asr_pt.models import ASRModel

Result = TypeVar("Result")


def models_gpu_seconds(audio_seconds: float) -> int:
    """The GPU time to ask ZeroGPU for both models on this much audio: a fraction of its length, plus the worker's
    start."""
    return math.ceil(30 + audio_seconds / 2)


def on_gpu(
    function: Callable[..., Result],
    duration: Callable[..., float],
    zero_gpu: bool,
    models: Sequence[ASRModel] = (),
) -> Callable[..., Result]:
    """`function` run in a ZeroGPU worker per call, asking for `duration(*args)` seconds, when `zero_gpu`; else
    `function` itself. `models` are those it runs (the aligner has no counts to keep)."""
    if not zero_gpu:
        return function
    import spaces  # imported by gradio already, which on ZeroGPU patched torch before the models loaded

    @functools.wraps(function)
    def in_worker(*args):
        counts = [model.rtf_count for model in models]
        result = function(*args)
        return result, [model.rtfs_since(count) for model, count in zip(models, counts, strict=True)]

    in_worker = spaces.GPU(duration=duration)(in_worker)

    @functools.wraps(function)
    def call(*args):
        with contextlib.ExitStack() as waiting:
            for model in models:
                waiting.enter_context(model.running_in_worker())
            result, rtfs = in_worker(*args)
        for model, measured in zip(models, rtfs, strict=True):
            for rtf in measured:
                model.record_rtf(rtf)
        return result

    return call
