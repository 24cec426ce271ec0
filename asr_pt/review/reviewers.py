"""Who may review: self-hosted reviewers with scrypt-hashed passwords, or Hugging Face users on an allow-list.

`ASR_PT_REVIEWERS` is either a file with one `name:hash` a line or the same entries separated by commas; make a
hash with `python -m asr_pt hash-password`. On Spaces, `ASR_PT_REVIEWER_ALLOWLIST` (comma-separated Hugging Face
user names) limits who may review after logging in; without it every logged-in user may.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

SCRYPT = {"n": 2**14, "r": 8, "p": 1}
DIGEST_BYTES = 64  # hashlib.scrypt's default length; a shorter (truncated) digest would be easier to guess
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


def load_allowlist(config: str) -> set[str]:
    """Hugging Face user names allowed to review (`ASR_PT_REVIEWER_ALLOWLIST`); empty means any logged-in user."""
    return {name.strip().lower() for name in config.split(",") if name.strip()}


def hf_user_allowed(username: str | None, allowlist: set[str]) -> bool:
    """Whether a logged-in Hugging Face user may review; nobody who is not logged in may."""
    if not username:
        return False
    return not allowlist or username.lower() in allowlist
