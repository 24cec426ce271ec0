import io
import subprocess
import sys
from pathlib import Path

import pytest

from asr_pt.cli import main
from asr_pt.review.reviewers import (
    authenticate,
    hash_password,
    hf_user_allowed,
    load_allowlist,
    load_reviewers,
    near_misses,
    profile_orgs,
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


def test_reviewers_from_a_file_or_inline(tmp_path):
    ana, bia = hash_password("a-pass"), hash_password("b-pass")
    config = tmp_path / "reviewers.txt"
    config.write_text(f"# who may review\nana:{ana}\n\nbia:{bia}\n", encoding="utf-8")
    assert load_reviewers(str(config)) == {"ana": ana, "bia": bia}
    reviewers = load_reviewers(f"ana:{ana}, bia:{bia}")
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


def test_the_hf_allowlist_lets_in_exactly_the_names_and_organisations_it_lists():
    allowlist = load_allowlist(" ana, org:lab ,Bia")
    assert allowlist == {"ana", "org:lab", "Bia"}  # kept as written: HF spells a name one way
    assert hf_user_allowed("ana", [], allowlist) and hf_user_allowed("Bia", [], allowlist)
    assert hf_user_allowed("caio", ["other", "lab"], allowlist)  # a member of a listed organisation
    for name in ("Ana", "ANA", "bia", "аna", "ａｎａ", "ana\u200b", " ana", "ana\n", "an", "lab", "org:lab", None, 7):
        assert not hf_user_allowed(name, [], allowlist), name  # case, Cyrillic "а", full width, zero width...
    assert not hf_user_allowed("caio", ["Lab", "lаb", "ｌａｂ", "lab\u200b", None], allowlist)
    assert not hf_user_allowed("ana", [], load_allowlist(""))  # an empty list lets nobody in
    assert near_misses("Ana", allowlist) == ["ana"] and near_misses("ana", allowlist) == []
    for entry in ("аna", "ａｎａ", "org:", "ana bia", "org:lab/x", "-ana"):
        with pytest.raises(ValueError, match="not a Hugging Face user name"):
            load_allowlist(f"bia,{entry}")


def test_profile_orgs_reads_the_userinfo_organisations():
    profile = {"orgs": [{"preferred_username": "lab", "name": "The Lab"}, {"name": "no handle"}, "junk"]}
    assert profile_orgs(profile) == ["lab"]
    assert profile_orgs({}) == [] and profile_orgs({"orgs": "lab"}) == []


def test_hash_password_command_prints_the_whole_entry():
    result = subprocess.run(
        [sys.executable, "-m", "asr_pt", "hash-password", "ana"], input="s3nha\r\n", capture_output=True, text=True,
        cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    entry = result.stdout.strip()  # piped from Windows: the \r is not part of the password
    assert authenticate("ana", "s3nha", load_reviewers(entry)) == "ana"


@pytest.mark.parametrize("typed", ["", "\n", "  \t\r\n"])
def test_hash_password_command_refuses_a_blank_password(typed, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(typed))
    with pytest.raises(SystemExit, match="the password is blank"):
        main(["hash-password", "ana"])
    assert not capsys.readouterr().out


@pytest.mark.parametrize("name", ["", " ", "a:b", "ana,bia", "#ana"])
def test_hash_password_command_refuses_names_an_entry_cannot_hold(name, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3nha\n"))
    with pytest.raises(SystemExit) as exit:
        main(["hash-password", name])
    assert exit.value.code == 2 and "a reviewer name must be" in capsys.readouterr().err
