"""Qwen3-ASR models loaded once, lazily and thread-safely, and the transcripts they produce.

The only loading path is `qwen_asr.Qwen3ASRModel.from_pretrained(id_or_dir)`: the real 1.7B models in production,
the tiny checkpoint of `asr_pt.tiny_model` in tests.
"""

from __future__ import annotations

import gc
import math
import statistics
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from huggingface_hub import constants as hub_constants

from asr_pt.audio import SAMPLE_RATE
from asr_pt.confidence import ChosenTokenLogProbs, ScoredWord, match_words, word_confidences
from asr_pt.int8_cache import quantize_with_cache
from asr_pt.precision import INT8, load_dtype, quantize_int8, weight_bytes
from asr_pt.settings import DEFAULTS, from_environment

FINETUNED_MODEL = DEFAULTS.finetuned_model
BASE_MODEL = DEFAULTS.base_model
DEFAULT_LANGUAGE = "Portuguese"
AUTO_LANGUAGE = "auto"
# qwen-asr's generate() stops on <|im_end|> and <|endoftext|>; a row without either ran out of max_new_tokens.
EOS_TOKEN_IDS = (151645, 151643)
ASR_TEXT_TAG = "<asr_text>"
# What a model writes before the transcript ("language Portuguese<asr_text>") and after it: room beyond the speech.
PROMPT_TAIL_TOKENS = 16
# What `train` writes into a checkpoint folder: the data it was trained and selected on (read by eval's held-out guard).
TRAINING_RECORD = "asr_pt_training.json"


def target_text(text: str, language: str = DEFAULT_LANGUAGE) -> str:
    """What the model writes for a clip: its language, the tag, then the transcript (qwen-asr's output format)."""
    return f"language {language}{ASR_TEXT_TAG}{text}"


def prompt_text(processor, context: str = "") -> str:
    """The prompt qwen-asr builds at inference: system context, the audio, then the assistant turn opening."""
    messages = [
        {"role": "system", "content": context},
        {"role": "user", "content": [{"type": "audio", "audio": ""}]},
    ]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def supported_languages() -> list[str]:
    """The languages qwen-asr can be forced to, in its own spelling."""
    from qwen_asr.inference.utils import SUPPORTED_LANGUAGES

    return list(SUPPORTED_LANGUAGES)


def release_memory() -> None:
    """Give back a deleted model's memory now: models can hold reference cycles that only the collector frees, and
    the CUDA allocator keeps freed blocks cached until asked to return them."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class ModelLoadError(RuntimeError):
    """A model that cannot be loaded, with a message that names it and the cause."""


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str  # detected, or the forced one; "" when the model heard no speech
    seconds: float  # wall time spent transcribing (a batch's time is shared in proportion to audio length)
    audio_seconds: float
    truncated: bool  # generation stopped before an end token: the text is probably cut short
    timed_out: bool = False  # ... because the model's time limit was reached
    words: tuple[ScoredWord, ...] = ()  # the transcript's words with the model's confidence in each (asr_pt.confidence)

    @property
    def rtf(self) -> float:
        """Real-time factor: seconds of compute per second of audio (below 1 is faster than real time)."""
        return self.seconds / self.audio_seconds if self.audio_seconds else 0.0


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


# What the app serves in on a CPU: int8 fits both 1.7B models in a 16 GB Space and is the fastest there (README).
SERVING_CPU_DTYPE = INT8


def default_dtype(device: str, cpu_dtype: str = "float32", chosen: str | None = None) -> str:
    """`chosen` (by default ASR_PT_DTYPE) when set; else bfloat16 on a GPU and `cpu_dtype` on a CPU (float32: the
    card's own numbers)."""
    chosen = from_environment().dtype if chosen is None else chosen
    return chosen or ("bfloat16" if device.startswith("cuda") else cpu_dtype)


def load_failure_message(
    model_id: str, error: Exception, kind: str = "Qwen3-ASR", build_command: str = "tiny-model"
) -> str:
    """Why `model_id` did not load, in words for whoever started the app, and what to do instead."""
    looks_like_folder = model_id.startswith((".", "/", "~")) or model_id.count("/") != 1  # hub ids are owner/name
    if looks_like_folder and not Path(model_id).expanduser().exists():
        cause = f"there is no folder {model_id}"
    elif hub_constants.HF_HUB_OFFLINE or "connect" in str(error).lower() or "offline" in str(error).lower():
        cause = "it is not in the local cache and the Hugging Face Hub cannot be reached (offline)"
    else:
        cause = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
    return (
        f"Could not load model '{model_id}': {cause}. Give a local folder that holds a {kind} checkpoint instead, "
        f"or build a tiny random one to try things out with `python -m asr_pt {build_command} DIR`."
    )


def check_fetchable(model_id: str) -> None:
    """Raise at once when `model_id` would have to come from a Hub that cannot be reached.

    Offline, transformers retries the Hub with backoff for a minute or two before it gives up (46 s here, two minutes
    on a slower network); one request without retries answers in milliseconds. A folder, or a Hub id already in the
    local cache, is left to `from_pretrained`.
    """
    if Path(model_id).expanduser().exists():
        return
    from huggingface_hub import HfApi, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(model_id, "config.json"), str):
        return
    if hub_constants.HF_HUB_OFFLINE:
        raise OSError(f"{model_id} is not in the local cache and HF_HUB_OFFLINE=1 (offline)")
    HfApi().model_info(model_id, timeout=10)


def checkpoint_folder(model_id: str) -> Path:
    """The folder `from_pretrained` read `model_id` from: the folder itself, or its snapshot in the Hub cache."""
    if Path(model_id).expanduser().exists():
        return Path(model_id).expanduser()
    from huggingface_hub import try_to_load_from_cache

    return Path(try_to_load_from_cache(model_id, "config.json")).parent


class LazyModel:
    """A model loaded on first use, once, under a lock, and shared by every thread of the app; a failed load is
    remembered and raised again at once (a Hub id that cannot be fetched would otherwise stall every request on
    network retries). Subclasses say how to load in `_from_pretrained`."""

    def __init__(self, model_id: str, device: str | None = None, dtype: str | None = None):
        self.model_id = model_id
        self.device = device or default_device()
        self.dtype = dtype or default_dtype(self.device)
        load_dtype(self.dtype)  # an unknown name fails here, not in the background load
        self._model = None
        self._load_error: ModelLoadError | None = None
        self._load_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def load_error(self) -> ModelLoadError | None:
        """Why the model could not be loaded, once a load has failed."""
        return self._load_error

    def load(self):
        """Load the checkpoint once; later calls return the same model, or raise the same error."""
        if self._model is None:
            with self._load_lock:
                if self._load_error is not None:
                    raise self._load_error
                if self._model is None:
                    try:
                        self._model = self._from_pretrained()
                    except ModelLoadError as error:
                        self._load_error = error
                        raise
        return self._model

    def _from_pretrained(self):
        raise NotImplementedError


class ASRModel(LazyModel):
    """One Qwen3-ASR model, loaded on first use and shared by every thread of the app.

    Generation runs under a lock: one batch at a time per model, which is what a single GPU does anyway and keeps
    concurrent requests from interleaving inside `generate`.
    """

    def __init__(
        self,
        model_id: str,
        *,
        device: str | None = None,
        dtype: str | None = None,
        max_new_tokens: int = 512,
        max_batch_size: int = 32,
        tokens_per_second: float | None = None,
        time_limit: float | None = None,
        max_context_tokens: int | None = None,
        int8_cache: Path | None = None,
        word_confidence: bool = True,
    ):
        """`tokens_per_second` caps the tokens written per second of the longest clip (speech is at most ~7 a
        second; a model stuck repeating itself stops sooner), `time_limit` the seconds one generation may run, and
        `max_context_tokens` what the context may add to the prompt: together they bound what one request costs.
        In int8, `int8_cache` is a folder that keeps the quantised weights for the next load (`asr_pt.int8_cache`).
        `word_confidence` keeps the probability of each chosen token, for `Transcript.words`."""
        super().__init__(model_id, device, dtype)
        if self.dtype == INT8 and not self.device.startswith("cpu"):
            raise ValueError("int8 (dynamic quantisation) runs on CPU only; use bfloat16 on a GPU")
        self.max_new_tokens = max_new_tokens
        self.max_batch_size = max_batch_size
        self.tokens_per_second = tokens_per_second
        self.time_limit = time_limit
        self.max_context_tokens = max_context_tokens
        self.int8_cache = int8_cache
        self.int8_from_cache: bool | None = None  # once loaded in int8: whether the cache gave the weights
        self._weight_bytes: int | None = None
        self.word_confidence = word_confidence
        self._generate_lock = threading.Lock()
        self._finished_rows: list[bool] = []
        self._scored_rows: list[tuple[list[int], list[float]]] = []  # per generated row: new tokens, their log-probs
        self._recent_rtfs: deque[float] = deque(maxlen=8)
        self.rtf_count = 0  # real-time factors recorded so far (the median is of the last few)
        self._generation_limits: dict = {}  # this batch's max_new_tokens and max_time, set under the generate lock
        self._timed_out: list[bool] = []
        self._waiting = 0  # requests waiting for, or holding, the generate lock (or in a GPU worker)
        self._in_workers = 0  # requests running this model in a ZeroGPU worker
        self._waiting_lock = threading.Lock()

    @property
    def weight_bytes(self) -> int | None:
        """Memory held by the loaded weights (None until loaded); counted once, at load: counting unpacks every int8
        layer, which the status line would otherwise do at each refresh."""
        return self._weight_bytes

    @property
    def measured_rtf(self) -> float | None:
        """Median real-time factor of the last few requests on this machine (None before the first)."""
        return statistics.median(self._recent_rtfs) if self._recent_rtfs else None

    def record_rtf(self, rtf: float) -> None:
        """One request's real-time factor: measured here, or in a ZeroGPU worker and handed back."""
        self._recent_rtfs.append(rtf)
        self.rtf_count += 1

    def rtfs_since(self, count: int) -> list[float]:
        """The real-time factors recorded after the `count`th (as many as are kept)."""
        new = min(self.rtf_count - count, len(self._recent_rtfs))
        return list(self._recent_rtfs)[-new:] if new > 0 else []

    @contextmanager
    def running_in_worker(self) -> Iterator[None]:
        """Counts a request that runs this model in a ZeroGPU worker as waiting for it, and the model as busy, for
        as long as the request lasts: the worker's own counts never come back to this process."""
        self._count_waiting(+1, in_workers=1)
        try:
            yield
        finally:
            self._count_waiting(-1, in_workers=-1)

    @property
    def busy(self) -> bool:
        return self._generate_lock.locked() or self._in_workers > 0

    @property
    def waiting(self) -> int:
        """Requests that wait for this model, the running one included."""
        return self._waiting

    def _from_pretrained(self):
        from qwen_asr import Qwen3ASRModel

        try:
            check_fetchable(self.model_id)
            model = Qwen3ASRModel.from_pretrained(
                self.model_id,
                dtype=load_dtype(self.dtype),
                device_map=self.device,
                max_inference_batch_size=self.max_batch_size,
                max_new_tokens=self.max_new_tokens,
            )
        except Exception as error:  # transformers raises OSError, ValueError, HFValidationError... for one cause
            raise ModelLoadError(load_failure_message(self.model_id, error)) from error
        model.model.eval()
        if self.dtype == INT8 and self.int8_cache is not None:
            self.int8_from_cache = quantize_with_cache(model.model, checkpoint_folder(self.model_id), self.int8_cache)
        elif self.dtype == INT8:
            quantize_int8(model.model)
        self._weight_bytes = weight_bytes(model.model)
        self._watch_generation(model.model)
        return model

    def _watch_generation(self, network) -> None:
        """Record, per generated row, whether it ended on an EOS token (qwen-asr drops that fact) and, with
        `word_confidence`, its new tokens up to the end token with their log-probabilities."""
        # Neither `self` nor `network` is held strongly: a reference cycle would keep the weights alive after `del`
        # until the garbage collector happens to run, and eval relies on one model in memory at a time.
        generate = type(network).generate
        network_ref = weakref.ref(network)
        finished_rows, limits, timed_out = self._finished_rows, self._generation_limits, self._timed_out
        scored_rows, owner = self._scored_rows, weakref.ref(self)  # word_confidence is read per call

        def generate_and_record(*args, **kwargs):
            kwargs.update(limits)
            word_confidence = owner().word_confidence
            if word_confidence:
                recorder = ChosenTokenLogProbs()
                kwargs["logits_processor"] = [*kwargs.get("logits_processor", []), recorder]
            start = time.perf_counter()
            result = generate(network_ref(), *args, **kwargs)
            timed_out.append("max_time" in limits and time.perf_counter() - start >= limits["max_time"])
            prompt_length = kwargs["input_ids"].shape[1] if "input_ids" in kwargs else args[0].shape[1]
            new_tokens = result.sequences[:, prompt_length:]
            is_end = torch.isin(new_tokens, torch.tensor(EOS_TOKEN_IDS, device=new_tokens.device))
            finished_rows.extend(is_end.any(dim=1).tolist())
            if word_confidence:
                lengths = torch.where(is_end.any(dim=1), is_end.int().argmax(dim=1), new_tokens.shape[1]).tolist()
                log_probs = recorder.chosen(new_tokens)
                for row, length in enumerate(lengths):
                    scored_rows.append((new_tokens[row, :length].tolist(), log_probs[row, :length].tolist()))
            return result

        network.generate = generate_and_record

    def generate_from_prompt(self, prompt: str, audio: np.ndarray) -> tuple[str, bool]:
        """What the model writes after `prompt` (a qwen-asr chat prompt, perhaps with text already decoded appended)
        for one 16 kHz clip: the decoded new text and whether it ended on its own, not at the token or time limit.

        `Qwen3ASRModel.transcribe` builds its own prompts, so streaming, which continues a prefix, generates here;
        under the same lock, so it never interleaves with a transcription.
        """
        model = self.load()
        with self._generation(len(audio) / SAMPLE_RATE):  # the same token and time limits
            texts, finished = self._generate(model, [prompt], [audio])
        return texts[0], all(finished)

    def transcribe(self, audio: np.ndarray, language: str | None = DEFAULT_LANGUAGE, context: str = "") -> Transcript:
        """Transcribe one 16 kHz mono clip (as `asr_pt.audio.load_audio` returns it)."""
        return self.transcribe_batch([audio], language=language, context=context)[0]

    def transcribe_batch(
        self, audios: Sequence[np.ndarray], language: str | None = DEFAULT_LANGUAGE, context: str = ""
    ) -> list[Transcript]:
        """Transcribe 16 kHz mono clips in batches of `max_batch_size`; `language` None or "auto" detects it."""
        from qwen_asr.inference.utils import MAX_ASR_INPUT_SECONDS, split_audio_into_chunks

        if not audios:
            return []
        forced = None if language in (None, "", AUTO_LANGUAGE) else language
        model = self.load()
        self._check_context(model, context)
        durations = [len(a) / SAMPLE_RATE for a in audios]
        with self._generation(max(durations)):
            start = time.perf_counter()
            results = model.transcribe([(a, SAMPLE_RATE) for a in audios], context=context, language=forced)
            elapsed = time.perf_counter() - start
            finished = iter(self._finished_rows)
            scored = iter(list(self._scored_rows))
            timed_out = any(self._timed_out)
        total = sum(durations)
        self.record_rtf(elapsed / total)
        transcripts = []
        for audio, audio_seconds, result in zip(audios, durations, results, strict=True):
            chunks = len(split_audio_into_chunks(audio, SAMPLE_RATE, MAX_ASR_INPUT_SECONDS))
            truncated = not all([next(finished, True) for _ in range(chunks)])
            words = [w for _ in range(chunks) for w in self._scored_words(model, next(scored, ([], [])), forced)]
            transcripts.append(
                Transcript(
                    text=result.text.strip(),
                    language=result.language,
                    seconds=elapsed * audio_seconds / total,
                    audio_seconds=audio_seconds,
                    truncated=truncated,
                    timed_out=truncated and timed_out,
                    words=match_words(result.text, words) if self.word_confidence else (),
                )
            )
        return transcripts

    def generate_batch(self, audios: Sequence[np.ndarray], language: str | None = DEFAULT_LANGUAGE) -> list[Transcript]:
        """Transcribe 16 kHz mono clips in one batch the way the model card's numbers were made: the seed author's
        `evaluate_model` (the chat prompt with an empty system turn, `language X<asr_text>` appended, greedy
        `generate`, the new tokens decoded with `skip_special_tokens=True` and stripped), not qwen-asr's
        `transcribe`, whose output parser collapses repeated runs. With no forced language the model writes
        `language X<asr_text>` itself; that prefix is split off and nothing else is changed."""
        if not audios:
            return []
        forced = None if language in (None, "", AUTO_LANGUAGE) else language
        model = self.load()
        prompt = prompt_text(model.processor) + (target_text("", forced) if forced else "")
        durations = [len(a) / SAMPLE_RATE for a in audios]
        with self._generation(max(durations)):
            start = time.perf_counter()
            # max_new_tokens: the model's generation limits
            decoded, finished = self._generate(model, [prompt] * len(audios), audios, do_sample=False)
            elapsed = time.perf_counter() - start
            scored = list(self._scored_rows)
        total = sum(durations)
        transcripts = []
        for index, (text, audio_seconds, ended) in enumerate(zip(decoded, durations, finished, strict=True)):
            detected = forced or ""
            if not forced and ASR_TEXT_TAG in text:
                prefix, _, text = text.partition(ASR_TEXT_TAG)
                detected = prefix.removeprefix("language ").strip()
            seconds = elapsed * audio_seconds / total if total else 0.0
            words = match_words(text, self._scored_words(model, scored[index], forced)) if self.word_confidence else ()
            transcripts.append(Transcript(text.strip(), detected, seconds, audio_seconds, not ended, words=words))
        return transcripts

    @staticmethod
    def _scored_words(model, row: tuple[list[int], list[float]], forced: str | None) -> list[ScoredWord]:
        """A generated row's transcript words with their confidence: with a forced language the prompt ends in
        `<asr_text>` and every new token is transcript; else the transcript follows the tag the model writes."""
        return word_confidences(model.processor.tokenizer, *row, after="" if forced else ASR_TEXT_TAG)

    def _generate(self, model, prompts: list[str], audios: Sequence[np.ndarray], **kwargs) -> tuple[list, list]:
        """`generate` on raw prompts, inside `_generation`: each row's new text (special tokens dropped) and whether
        it ended on its own."""
        processor, network = model.processor, model.model
        inputs = processor(text=prompts, audio=list(audios), return_tensors="pt", padding=True)
        inputs = {
            key: value.to(network.device, network.dtype if value.is_floating_point() else None)
            for key, value in inputs.items()
        }
        with torch.no_grad():
            output = network.generate(**inputs, **kwargs)
        texts = processor.batch_decode(
            output.sequences[:, inputs["input_ids"].shape[1] :],
            skip_special_tokens=True,
            clean_up_tokenization_spaces=False,
        )
        return texts, list(self._finished_rows)

    @contextmanager
    def _generation(self, longest_seconds: float) -> Iterator[None]:
        """The generate lock for one batch, its per-row records cleared and its limits set; the request counts as
        waiting from the moment it asks for the lock."""
        self._count_waiting(+1)
        try:
            with self._generate_lock:
                self._finished_rows.clear()
                self._scored_rows.clear()
                self._timed_out.clear()
                self._set_generation_limits(longest_seconds)
                yield
        finally:
            self._count_waiting(-1)

    def _count_waiting(self, change: int, in_workers: int = 0) -> None:
        with self._waiting_lock:
            self._waiting += change
            self._in_workers += in_workers

    def _check_context(self, model, context: str) -> None:
        if self.max_context_tokens is None or not context:
            return
        tokens = len(model.processor.tokenizer(context).input_ids)
        if tokens > self.max_context_tokens:
            raise ValueError(f"the context is too long: {tokens:,} tokens, the limit is {self.max_context_tokens:,}")

    def new_token_limit(self, audio_seconds: float) -> int:
        """The most tokens the model may write for a clip this long."""
        if self.tokens_per_second is None:
            return self.max_new_tokens
        return min(self.max_new_tokens, PROMPT_TAIL_TOKENS + math.ceil(self.tokens_per_second * audio_seconds))

    def _set_generation_limits(self, longest_seconds: float) -> None:
        self._generation_limits.clear()
        self._generation_limits["max_new_tokens"] = self.new_token_limit(longest_seconds)
        if self.time_limit is not None:
            self._generation_limits["max_time"] = self.time_limit
