"""A stand-in for Hugging Face's `spaces` package on ZeroGPU, for tests: the process model without a GPU.

Put this folder first on the import path of the app under test (conftest's `zerogpu_app` fixture does). As `spaces`
0.51.3 does on ZeroGPU (`spaces/zero/wrappers.py`):

- `GPU` (bare, or with `duration=` seconds, a timedelta or a callable given the call's own arguments, and `size=`)
  runs each call in a forked worker process, reused while it is idle (unless its last call failed); calls that
  overlap fork another worker; each decorated function has its own workers. A call made in a worker runs there.
- Arguments and results cross by pickling (synchronously, so what does not pickle fails the call at once);
  a generator's items come back one by one; closing the generator in the main process stops it in the worker.
- A `gr.Error` raised in the worker reaches the caller as it is; any other exception becomes
  `gr.Error("<class name>", title="ZeroGPU worker error")`, as `spaces` reports it; a worker that dies is
  "GPU task aborted".
- Nothing the worker changes comes back: it is a fork.

ZeroGPU lends CUDA only inside those calls, so a model run in the main process fails there. Here the main process
refuses model work the same way: importing this module makes every `torch.nn.Module` forward pass in the main
process raise `MainProcessModelWork`; the workers undo that right after the fork. Loading weights calls no forward,
so the app loads its models in the main process, as it must on ZeroGPU.

Every call is counted: with `ZEROGPU_STANDIN_CALLS` set to a file, each finished call appends one JSON line
(function, duration asked, worker pid, whether the worker was new, outcome, items streamed) that tests read.
"""

from __future__ import annotations

import ctypes
import functools
import inspect
import itertools
import json
import multiprocessing
import os
import pickle
import signal
import threading
import traceback
from datetime import timedelta

import gradio as gr
import torch

__all__ = ["GPU", "MainProcessModelWork"]

CALLS_ENV = "ZEROGPU_STANDIN_CALLS"
DEFAULT_DURATION = 60  # what spaces asks for when no duration is given
POLL_SECONDS = 0.2  # how often the main process checks that the worker is alive while it waits

_fork = multiprocessing.get_context("fork")
_forked = False  # true in a worker
_log_lock = threading.Lock()
_forward = torch.nn.Module.__call__


class MainProcessModelWork(RuntimeError):
    """A model ran outside a GPU call: on ZeroGPU there is no CUDA there."""


def _refuse(self, *args, **kwargs):
    raise MainProcessModelWork(
        f"{type(self).__name__} ran in the main process: on ZeroGPU models run only inside a spaces.GPU call"
    )


torch.nn.Module.__call__ = _refuse


def GPU(task=None, *, duration=None, size=None, **kwargs):
    """`spaces.GPU`: `@GPU`, `@GPU(duration=...)`, `GPU(duration=...)(function)`."""
    if not callable(task):
        return functools.partial(_wrap, duration=duration, size=size)
    return _wrap(task, duration=duration, size=size)


def _wrap(task, *, duration, size):
    if inspect.iscoroutinefunction(task):
        raise NotImplementedError("spaces.GPU does not take coroutines")
    generator = inspect.isgeneratorfunction(task)
    idle: list[_Worker] = []
    idle_lock = threading.Lock()

    def take_worker() -> tuple[_Worker, bool]:
        with idle_lock:
            while idle:
                worker = idle.pop()
                if worker.process.is_alive():
                    return worker, False
        return _Worker(task, generator), True

    def give_back(worker: _Worker) -> None:
        with idle_lock:
            idle.append(worker)

    def seconds_asked(args, kwargs) -> float:
        asked = duration(*args, **kwargs) if callable(duration) else duration
        if asked is None:
            return DEFAULT_DURATION
        if isinstance(asked, timedelta):
            return asked.total_seconds()
        if not isinstance(asked, int | float) or isinstance(asked, bool) or asked <= 0:
            raise TypeError(f"a GPU duration must be a positive number of seconds, not {asked!r}")
        return asked

    if generator:

        @functools.wraps(task)
        def gradio_handler(*args, **kwargs):
            if _forked:
                yield from task(*args, **kwargs)
                return
            asked = seconds_asked(args, kwargs)
            worker, new = take_worker()
            items, outcome = 0, "error"
            try:
                worker.send(args, kwargs)
                while True:
                    kind, value = worker.receive()
                    if kind == "item":
                        items += 1
                        try:
                            yield value
                        except GeneratorExit:
                            worker.stop.set()
                            worker.drain()
                            outcome = "closed"
                            raise
                        continue
                    if kind == "end":
                        outcome = "ok"
                        return
                    raise _error(value)
            finally:
                _record(task, asked, worker, new, outcome, items)
                if outcome in ("ok", "closed"):  # as spaces: a worker whose call failed is not used again
                    give_back(worker)

    else:

        @functools.wraps(task)
        def gradio_handler(*args, **kwargs):
            if _forked:
                return task(*args, **kwargs)
            asked = seconds_asked(args, kwargs)
            worker, new = take_worker()
            outcome = "error"
            try:
                worker.send(args, kwargs)
                kind, value = worker.receive()
                if kind == "result":
                    outcome = "ok"
                    return value
                raise _error(value)
            finally:
                _record(task, asked, worker, new, outcome, None)
                if outcome == "ok":
                    give_back(worker)

    gradio_handler.zerogpu = None  # what spaces marks its wrappers with
    return gradio_handler


class _Worker:
    """One forked process that runs `task` for each call it is sent, over a pipe, until its parent goes."""

    def __init__(self, task, generator: bool):
        self.connection, worker_end = _fork.Pipe()
        self.stop = _fork.Event()
        self.process = _fork.Process(target=_serve, args=(task, generator, worker_end, self.stop), daemon=True)
        self.process.start()
        worker_end.close()

    def send(self, args, kwargs) -> None:
        """Pickles here, synchronously: what does not pickle fails the call at once, and the worker stays idle."""
        self.stop.clear()
        self.connection.send((args, kwargs))

    def receive(self) -> tuple[str, object]:
        while not self.connection.poll(POLL_SECONDS):
            if not self.process.is_alive():
                return "aborted", None
        return self.connection.recv()

    def drain(self) -> None:
        """After a stop: read until the worker says it ended, so that its next call starts clean."""
        while self.receive()[0] not in ("end", "error", "aborted"):
            pass


def _serve(task, generator: bool, connection, stop) -> None:
    global _forked
    _forked = True
    torch.nn.Module.__call__ = _forward  # CUDA is lent here: models may run
    with_parent_death_signal()
    while True:
        try:
            args, kwargs = connection.recv()
        except (EOFError, OSError):  # the app went
            return
        try:
            if generator:
                for item in task(*args, **kwargs):
                    if stop.is_set():
                        break
                    connection.send(("item", item))
                connection.send(("end", None))
            else:
                connection.send(("result", task(*args, **kwargs)))
        except Exception as error:  # sent back, as spaces does; a result that does not pickle lands here too
            connection.send(("error", _exception_result(error)))


def with_parent_death_signal() -> None:
    """A worker dies with the app (Linux's prctl PR_SET_PDEATHSIG), as a Space's do with its container."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)
    if os.getppid() == 1:  # the parent went before the signal was armed
        os._exit(0)


def _exception_result(error: Exception) -> dict:
    gradio_error = error if isinstance(error, gr.Error) else None
    try:
        pickle.dumps(gradio_error)
    except Exception:  # an error that does not pickle is reported by its class, as any other
        gradio_error = None
    return {
        "gradio_error": gradio_error,
        "error_cls": type(error).__name__,
        "traceback": "".join(traceback.format_exception(error)),
    }


def _error(value) -> gr.Error:
    """What the caller gets, as spaces raises it."""
    if value is None:  # the worker died
        return gr.Error("GPU task aborted", title="ZeroGPU worker error", print_exception=False)
    if value["gradio_error"] is not None:
        return value["gradio_error"]
    print(value["traceback"], flush=True)
    return gr.Error(value["error_cls"], title="ZeroGPU worker error", print_exception=False)


_call_numbers = itertools.count(1)


def _record(task, asked: float, worker: _Worker, new: bool, outcome: str, items: int | None) -> None:
    path = os.environ.get(CALLS_ENV)
    if not path:
        return
    line = {
        "call": next(_call_numbers),
        "function": task.__qualname__,
        "duration": asked,
        "worker": worker.process.pid,
        "new_worker": new,
        "outcome": outcome,
        "items": items,
    }
    with _log_lock, open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
