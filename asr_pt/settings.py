"""Every setting the project reads from the environment, in one frozen object built once.

Nothing else in the project reads `os.environ`: `app.py` and the command lines take `from_environment()` and hand
each module the values it needs as arguments; library defaults come from `DEFAULTS` (no environment). The Space's
own decisions (ZeroGPU, Hugging Face logins, where the data lives, whether a proxy's forwarded address is trusted)
are made here, once. README's table of variables is `settings_table()` (a test keeps them equal).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

SPACE_DATA_DIR = Path("/data")  # a Space's persistent storage, when bought; the rest of its disk is wiped at restart


def setting(env: str, default, help: str, *, secret: bool = False):
    """A field read from the environment variable `env`; `help` is README's line for it."""
    return field(default=default, repr=not secret, metadata={"env": env, "help": help})


def _bool(text: str) -> bool:
    """As `spaces` reads SPACES_ZERO_GPU: 1, t or true (any case) is true."""
    return text.strip().lower() in ("1", "t", "true")


@dataclass(frozen=True)
class Settings:
    # -- the models ---------------------------------------------------------------------------------------------------
    finetuned_model: str = setting(
        "ASR_PT_FINETUNED_MODEL", "yuriyvnv/Qwen3-ASR-1.7B-PT", "the fine-tuned model: a Hub id or a checkpoint folder"
    )
    base_model: str = setting(
        "ASR_PT_BASE_MODEL", "Qwen/Qwen3-ASR-1.7B", "the zero-shot model: a Hub id or a checkpoint folder"
    )
    aligner_model: str = setting(
        "ASR_PT_ALIGNER_MODEL", "Qwen/Qwen3-ForcedAligner-0.6B", "the word-timings aligner: a Hub id or a folder"
    )
    dtype: str = setting(
        "ASR_PT_DTYPE",
        "",
        "float32, bfloat16, float16 or int8 for every model; empty: int8 for the app on a CPU, float32 for eval, "
        "train and import on a CPU, bfloat16 on a GPU",
    )
    # -- what one visitor may make the machine do ---------------------------------------------------------------------
    demo_max_seconds: float = setting(
        "ASR_PT_DEMO_MAX_SECONDS", 180.0, "the longest clip the page accepts; the upload limit follows from it"
    )
    max_audio_seconds: float = setting(
        "ASR_PT_MAX_AUDIO_SECONDS", 1200.0, "the longest clip eval, train and import read (qwen-asr's limit: 20 min)"
    )
    max_new_tokens: int = setting(
        "ASR_PT_MAX_NEW_TOKENS", 512, "the most tokens each model may write for a clip; a text cut there is flagged"
    )
    demo_time_limit: float = setting(
        "ASR_PT_DEMO_TIME_LIMIT", 60.0, "seconds each model may generate for one request; a text stopped is flagged"
    )
    demo_concurrency: int = setting(
        "ASR_PT_DEMO_CONCURRENCY", 2, "requests served at once; each model still runs one request at a time"
    )
    demo_queue_size: int = setting(
        "ASR_PT_DEMO_QUEUE_SIZE", 20, "requests that may wait; beyond them a visitor is told the queue is full"
    )
    session_capacity: int = setting(
        "ASR_PT_SESSION_CAPACITY", 2000, "visitors' sessions whose state Gradio keeps (about 150 KB each)"
    )
    review_sends_per_hour: int = setting(
        "ASR_PT_REVIEW_SENDS_PER_HOUR", 60, "clips all visitors together may send to review per hour"
    )
    stream_max_seconds: float = setting(
        "ASR_PT_STREAM_MAX_SECONDS", 30.0, "the longest a live microphone stream runs; it then stops and says so"
    )
    stream_limit: int = setting(
        "ASR_PT_STREAM_LIMIT",
        4,
        "live microphone streams open at once, page-wide (one per visitor); one silent for 5 s is closed",
    )
    batch_max_files: int = setting(
        "ASR_PT_BATCH_MAX_FILES", 50, 'the most files (zip members counted) in one "many files" batch'
    )
    batch_max_seconds: float = setting(
        "ASR_PT_BATCH_MAX_SECONDS", 600.0, 'the most seconds of audio in all of one "many files" batch'
    )
    batch_size: int = setting("ASR_PT_BATCH_SIZE", 8, 'clips per `generate` call in a "many files" batch')
    batch_max_review: int = setting(
        "ASR_PT_BATCH_MAX_REVIEW", 100, 'the most clips one visitor\'s session may send to review from "many files"'
    )
    # -- review -------------------------------------------------------------------------------------------------------
    data_dir: Path = setting(
        "ASR_PT_DATA_DIR",
        Path("data"),
        "the review store's folder; on a Space with persistent storage the default is /data",
    )
    reviewers: str = setting(
        "ASR_PT_REVIEWERS",
        "",
        "self-hosted logins: `name:scrypt$...` entries (`python -m asr_pt hash-password`), or a file of them",
        secret=True,
    )
    reviewer_allowlist: str = setting(
        "ASR_PT_REVIEWER_ALLOWLIST",
        "",
        "with Hugging Face logins: the user names (and `org:NAME` organisations) who may review; empty: nobody",
    )
    reviews_needed: int = setting("ASR_PT_REVIEWS_NEEDED", 1, "reviews an item needs before it counts as corrected")
    lease_seconds: float = setting(
        "ASR_PT_LEASE_SECONDS", 900.0, "how long an item shown to a reviewer stays theirs before it goes back"
    )
    hub_dataset: str = setting(
        "ASR_PT_HUB_DATASET", "", "a Hub dataset repo the store is backed up to and restored from (needs HF_TOKEN)"
    )
    hf_token: str = setting("HF_TOKEN", "", "a Hugging Face token that may write `ASR_PT_HUB_DATASET`", secret=True)
    hub_sync_minutes: float = setting("ASR_PT_HUB_SYNC_MINUTES", 5.0, "minutes between two backups to the Hub")
    eval_dir: Path = setting("ASR_PT_EVAL_DIR", Path("runs"), "the folder of eval runs the Explorer tab opens")
    int8_cache_dir: Path = setting(
        "ASR_PT_INT8_CACHE_DIR",
        Path("~/.cache/asr-pt/int8"),
        "where the app keeps its models' int8 weights for the next start; on a Space with /data, under /data",
    )
    # -- the Space ----------------------------------------------------------------------------------------------------
    space_id: str = setting(
        "SPACE_ID",
        "",
        "set by Hugging Face on a Space: logins become Hugging Face OAuth (with `SYSTEM`), the data folder defaults "
        "to /data when it exists, and the proxy's forwarded address is trusted",
    )
    space_system: str = setting(
        "SYSTEM",
        "",
        "set to `spaces` by Hugging Face on a Space; with `SPACE_ID` it turns on Hugging Face logins (gradio's real "
        "login needs both)",
    )
    zero_gpu: bool = setting(
        "SPACES_ZERO_GPU", False, "set by Hugging Face on ZeroGPU: every model call runs in a GPU worker"
    )
    trust_proxy: bool = setting(
        "ASR_PT_TRUST_PROXY",
        False,
        "take the client's address from X-Forwarded-For (behind a proxy that sets it; on a Space: always)",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings `environ` (by default the process's environment) gives; a value that does not parse is named."""
        environ = os.environ if environ is None else environ
        values = {}
        for item in fields(cls):
            text = environ.get(item.metadata["env"])
            if text is None or (text.strip() == "" and item.type not in ("str",)):
                continue
            try:
                values[item.name] = _parse(item.type, text)
            except ValueError as error:
                raise ValueError(f"{item.metadata['env']}={text!r} is not a valid {item.type}") from error
        settings = cls(**values)
        if settings.space_id:  # what being on a Space decides, unless set explicitly
            derived = {"trust_proxy": True}
            if SPACE_DATA_DIR.is_dir() and os.access(SPACE_DATA_DIR, os.W_OK):
                derived["data_dir"] = SPACE_DATA_DIR
                derived["int8_cache_dir"] = SPACE_DATA_DIR / "int8-cache"
            settings = replace(settings, **{k: v for k, v in derived.items() if fields_env(k) not in environ})
        return settings

    @property
    def on_space(self) -> bool:
        return bool(self.space_id)

    @property
    def oauth(self) -> bool:
        """Reviewers log in with Hugging Face on a Space (as gradio tells one: SYSTEM=spaces and SPACE_ID), with a name
        and a password elsewhere."""
        return self.on_space and self.space_system == "spaces"

    @property
    def persistent(self) -> bool:
        """Whether the data folder outlives a restart: a Space's disk is wiped, except /data."""
        return not self.on_space or Path(self.data_dir).resolve().is_relative_to(SPACE_DATA_DIR)


def fields_env(name: str) -> str:
    """The environment variable of the field `name`."""
    return next(item.metadata["env"] for item in fields(Settings) if item.name == name)


def _parse(kind: str, text: str):
    if kind == "bool":
        return _bool(text)
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "Path":
        return Path(text).expanduser()
    return text.strip()


DEFAULTS = Settings()


@functools.cache
def from_environment() -> Settings:
    """The process's settings: the environment read once, the first time anything asks."""
    return Settings.from_env()


def configure_server(settings: Settings) -> None:
    """Before the server starts, what the settings decide for uvicorn, which reads FORWARDED_ALLOW_IPS itself when
    it is configured: unless behind a proxy it trusts no peer's X-Forwarded-For, so a forged one sent from 127.0.0.1
    is not taken as the visitor's address (behind a proxy `asr_pt.ui.clients` reads the header itself)."""
    if not settings.trust_proxy:
        os.environ["FORWARDED_ALLOW_IPS"] = ""


def settings_table() -> str:
    """README's table of environment variables: name, default, what it sets."""
    from asr_pt.markdown import table

    rows = []
    for item in fields(Settings):
        default = getattr(DEFAULTS, item.name)
        shown = "(empty)" if default == "" else str(default).lower() if isinstance(default, bool) else f"{default}"
        rows.append([f"`{item.metadata['env']}`", f"`{shown}`", item.metadata["help"]])
    return table(["environment variable", "default", "what it sets"], rows)
