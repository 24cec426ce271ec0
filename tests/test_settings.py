"""The one settings module: every variable parsed there, nothing else reading the environment, README's table equal
to it, and the Space's decisions (data folder, proxy, logins) made once."""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from pathlib import Path

import pytest

import asr_pt.settings as settings_module
from asr_pt.settings import DEFAULTS, Settings, settings_table

ROOT = Path(__file__).resolve().parent.parent


def test_readme_table_is_the_settings_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = re.search(r"<!-- settings-table -->\n(.*?)<!-- /settings-table -->", readme, re.S).group(1)
    assert table.strip() == settings_table().strip()
    documented = set(re.findall(r"`((?:ASR_PT|SPACE|SPACES|HF)_[A-Z0-9_]+|SYSTEM)`", table))
    assert documented == {item.metadata["env"] for item in fields(Settings)}
    mentioned = set(re.findall(r"\bASR_PT_[A-Z0-9_]+[A-Z]\b", readme))
    assert mentioned <= documented, f"README names variables the settings do not read: {mentioned - documented}"


def test_values_are_parsed_and_a_bad_one_is_named():
    settings = Settings.from_env(
        {
            "ASR_PT_DEMO_MAX_SECONDS": "90",
            "ASR_PT_DEMO_CONCURRENCY": "3",
            "SPACES_ZERO_GPU": "True",
            "ASR_PT_DATA_DIR": "/tmp/store",
            "ASR_PT_BATCH_SIZE": "",  # empty: the default
            "ASR_PT_FINETUNED_MODEL": " models/a ",
        }
    )
    assert settings.demo_max_seconds == 90.0 and settings.demo_concurrency == 3 and settings.zero_gpu
    assert settings.data_dir == Path("/tmp/store") and settings.batch_size == DEFAULTS.batch_size
    assert settings.finetuned_model == "models/a" and settings.base_model == DEFAULTS.base_model
    assert not Settings.from_env({"SPACES_ZERO_GPU": "0"}).zero_gpu  # as `spaces` reads it
    assert not Settings.from_env({"SPACES_ZERO_GPU": "yes"}).zero_gpu  # 1, t or true only, as `spaces`
    with pytest.raises(ValueError, match="ASR_PT_DEMO_QUEUE_SIZE='many' is not a valid int"):
        Settings.from_env({"ASR_PT_DEMO_QUEUE_SIZE": "many"})


def test_secrets_stay_out_of_the_settings_repr():
    settings = Settings.from_env({"HF_TOKEN": "hf_secret", "ASR_PT_REVIEWERS": "ana:scrypt$abc"})
    assert settings.hf_token == "hf_secret" and "hf_secret" not in repr(settings) and "scrypt" not in repr(settings)


def test_a_space_decides_the_data_folder_the_proxy_and_the_logins(tmp_path, monkeypatch):
    local = Settings.from_env({})
    assert not local.oauth and not local.trust_proxy and local.persistent and local.data_dir == Path("data")

    monkeypatch.setattr(settings_module, "SPACE_DATA_DIR", tmp_path / "missing")
    on_space = {"SPACE_ID": "owner/space", "SYSTEM": "spaces"}
    wiped = Settings.from_env(on_space)
    assert wiped.oauth and wiped.trust_proxy and wiped.data_dir == Path("data") and not wiped.persistent

    (tmp_path / "data").mkdir()
    monkeypatch.setattr(settings_module, "SPACE_DATA_DIR", tmp_path / "data")
    persistent = Settings.from_env(on_space)
    assert persistent.data_dir == tmp_path / "data" and persistent.persistent
    # SPACE_ID alone is not a Space to gradio: its login would be a stand-in that logs every visitor in as this
    # machine's Hugging Face account, so reviewers keep their passwords.
    assert not Settings.from_env({"SPACE_ID": "owner/space"}).oauth
    chosen = Settings.from_env({"SPACE_ID": "owner/space", "ASR_PT_DATA_DIR": "elsewhere", "ASR_PT_TRUST_PROXY": "0"})
    assert chosen.data_dir == Path("elsewhere") and not chosen.trust_proxy and not chosen.persistent


def environment_reads(path: Path) -> list[int]:
    """Lines of `path` that read the environment (`os.environ...` or `os.getenv`), writes such as setdefault aside."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                lines.append(node.lineno)
    return lines


def test_nothing_but_the_settings_module_reads_the_environment():
    sources = [ROOT / "app.py", *(ROOT / "asr_pt").rglob("*.py"), *(ROOT / "eval").rglob("*.py")]
    sources += list((ROOT / "train").rglob("*.py"))
    readers = {str(p.relative_to(ROOT)): environment_reads(p) for p in sources if p.name != "settings.py"}
    assert {path: lines for path, lines in readers.items() if lines} == {}
