import subprocess
import sys
from pathlib import Path

import pytest

from asr_pt.review.reviewers import (
    authenticate,
    hash_password,
    hf_user_allowed,
    load_allowlist,
    load_reviewers,
    verify_password,
)

REPO = Path(__file__).resolve().parent.parent


def test_passwords_are_salted_scrypt_hashes():
    first, second = hash_password("segredo"), hash_password("segredo")
    assert first != second and "segredo" not in first and first.startswith("scrypt$")
    assert verify_password("segredo", first) and verify_password("segredo", second)
    assert not verify_password("Segredo", first)
    assert not verify_password("segredo", "scrypt$garbage") and not verify_password("segredo", "")
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


def test_reviewers_from_a_file_or_inline(tmp_path, monkeypatch):
    ana, bia = hash_password("a-pass"), hash_password("b-pass")
    config = tmp_path / "reviewers.txt"
    config.write_text(f"# who may review\nana:{ana}\n\nbia:{bia}\n", encoding="utf-8")
    assert load_reviewers(str(config)) == {"ana": ana, "bia": bia}
    monkeypatch.setenv("ASR_PT_REVIEWERS", f"ana:{ana}, bia:{bia}")
    reviewers = load_reviewers()
    assert authenticate(" ana ", "a-pass", reviewers) == "ana"
    assert authenticate("ana", "b-pass", reviewers) is None
    assert authenticate("caio", "a-pass", reviewers) is None
    assert load_reviewers("") == {}
    with pytest.raises(ValueError, match="'ana' is not `name:scrypt"):
        load_reviewers("ana:plaintext")


def test_malformed_hashes_refuse_login_and_are_reported_at_load():
    good = hash_password("segredo")
    salt, digest = good.split("$")[4:]
    for bad in (
        good[:-1] + "z",  # a digest that is not hex
        good.replace(salt, "xyz"),  # nor a salt
        good.replace("$16384$", "$many$"),
        good.replace("$16384$", "$3$"),  # scrypt wants a power of two
        "scrypt$16384$8$1$" + salt,  # a part missing
        good[:-2],  # a truncated digest
    ):
        assert not verify_password("segredo", bad)
        assert authenticate("ana", "segredo", {"ana": bad}) is None
        with pytest.raises(ValueError, match="'ana' is not `name:scrypt"):
            load_reviewers(f"ana:{bad}")
    assert load_reviewers(f"ana:{good}") == {"ana": good} and digest in good


def test_hf_allowlist():
    assert load_allowlist(" Ana, bia ,") == {"ana", "bia"}
    assert hf_user_allowed("ANA", {"ana", "bia"}) and not hf_user_allowed("caio", {"ana"})
    assert hf_user_allowed("caio", set())  # no list: any logged-in user
    assert not hf_user_allowed(None, set()) and not hf_user_allowed("", set())


def test_hash_password_command_reads_stdin():
    result = subprocess.run(
        [sys.executable, "-m", "asr_pt", "hash-password"], input="s3nha\n", capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert verify_password("s3nha", result.stdout.strip())
