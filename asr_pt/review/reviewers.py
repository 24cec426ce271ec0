"""Who may review: self-hosted reviewers with scrypt-hashed passwords, or Hugging Face users on an allow-list.

`ASR_PT_REVIEWERS` is either a file with one `name:hash` a line or the same entries separated by commas; make a
hash with `python -m asr_pt hash-password`. With Hugging Face logins, `ASR_PT_REVIEWER_ALLOWLIST` (comma-separated
Hugging Face user names and `org:NAME` organisations) says who may review; without it nobody may.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

SCRYPT = {"n": 2**14, "r": 8, "p": 1}
DIGEST_BYTES = 64  # hashlib.scrypt's default length; a shorter (truncated) digest would be easier to guess
# Hugging Face user and organisation names: ASCII letters and digits, with '-', '_' or '.' inside; at most 96 (the
# Hub's own bound on a name). Anything else (a Cyrillic "а", a full-width letter, a zero-width space) is no HF name.
HF_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
ORG_PREFIX = "org:"
_UNKNOWN_USER_HASH: str | None = None  # checked against for unknown names, so timing does not reveal who exists


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """`scrypt$n$r$p$salt$hash` (hex), safe to keep in configuration."""
    if not password:
        raise ValueError("the password is empty")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=DIGEST_BYTES, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${digest.hex()}"


def _parse_hash(hashed: str) -> tuple[bytes, dict[str, int], bytes] | None:
    """(salt, scrypt parameters, digest) of a `scrypt$n$r$p$salt$hash` string; None when it is malformed."""
    try:
        scheme, n, r, p, salt, digest = hashed.split("$")
        params = {"n": int(n), "r": int(r), "p": int(p)}
        salt_bytes, digest_bytes = bytes.fromhex(salt), bytes.fromhex(digest)
    except ValueError:
        return None
    valid = scheme == "scrypt" and params["n"] > 1 and params["n"] & (params["n"] - 1) == 0  # n: a power of two
    if not (valid and params["r"] > 0 and params["p"] > 0 and salt_bytes and len(digest_bytes) == DIGEST_BYTES):
        return None
    return salt_bytes, params, digest_bytes


def verify_password(password: str, hashed: str) -> bool:
    parsed = _parse_hash(hashed)
    if parsed is None:  # a malformed hash in the configuration never lets anyone in
        return False
    salt, params, digest = parsed
    try:
        actual = hashlib.scrypt(password.encode(), salt=salt, dklen=DIGEST_BYTES, **params)
    except (ValueError, MemoryError):  # parameters scrypt refuses (too much memory...)
        return False
    return hmac.compare_digest(actual, digest)


def load_reviewers(config: str) -> dict[str, str]:
    """Reviewer name -> password hash, from `config` (ASR_PT_REVIEWERS: a file path or inline entries)."""
    if config and "$" not in config and Path(config).expanduser().is_file():
        entries = Path(config).expanduser().read_text(encoding="utf-8").splitlines()
    else:
        entries = config.split(",")
    reviewers = {}
    for entry in entries:
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        name, separator, hashed = entry.partition(":")
        if not separator or not name.strip() or _parse_hash(hashed.strip()) is None:
            raise ValueError(
                f"reviewer entry for {name.strip()!r} is not `name:scrypt$...` (make one with "
                "`python -m asr_pt hash-password`)"
            )
        reviewers[name.strip()] = hashed.strip()
    return reviewers


def authenticate(name: str, password: str, reviewers: dict[str, str]) -> str | None:
    """The reviewer's name when the password is theirs, else None (the same time either way)."""
    global _UNKNOWN_USER_HASH
    name = (name or "").strip()
    hashed = reviewers.get(name)
    if hashed is None:
        _UNKNOWN_USER_HASH = _UNKNOWN_USER_HASH or hash_password(secrets.token_hex(8))
        verify_password(password or "", _UNKNOWN_USER_HASH)
        return None
    return name if verify_password(password or "", hashed) else None


def load_allowlist(config: str) -> frozenset[str]:
    """`ASR_PT_REVIEWER_ALLOWLIST`: Hugging Face user names and `org:NAME` organisations who may review.

    Entries are kept exactly as written (no case folding, no Unicode normalisation): a name matches only the account
    Hugging Face spells that way. An entry that cannot be a Hugging Face name is refused, so a typo is not silently
    an entry that lets nobody in.
    """
    entries = frozenset(entry.strip() for entry in config.split(",") if entry.strip())
    for entry in entries:
        if not HF_NAME.fullmatch(entry.removeprefix(ORG_PREFIX)):
            raise ValueError(
                f"reviewer allowlist entry {entry!r} is not a Hugging Face user name or `org:NAME` (ASCII letters, "
                "digits, '-', '_' and '.', as Hugging Face spells the name)"
            )
    return entries


def profile_orgs(profile: Mapping) -> list[str]:
    """The organisations a Hugging Face OAuth profile says its user belongs to (userinfo's `orgs`, by handle)."""
    orgs = profile.get("orgs")
    if not isinstance(orgs, list):
        return []
    return [org["preferred_username"] for org in orgs if isinstance(org, Mapping) and org.get("preferred_username")]


def hf_user_allowed(username: object, orgs: list[str], allowlist: frozenset[str]) -> bool:
    """Whether a logged-in Hugging Face user may review: their name, or one of their organisations as `org:NAME`,
    is on the list, compared character for character. An empty list lets nobody in."""
    if not isinstance(username, str) or not HF_NAME.fullmatch(username):
        return False
    return username in allowlist or any(isinstance(org, str) and ORG_PREFIX + org in allowlist for org in orgs)


def near_misses(username: str, allowlist: frozenset[str]) -> list[str]:
    """Entries that name `username` but for case: for the log of a refused login (the owner decides; never let in)."""
    return sorted(entry for entry in allowlist if entry.lower() == username.lower() and entry != username)
