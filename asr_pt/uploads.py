"""The files a visitor hands over to be transcribed in bulk: audio files and zips of them, opened within limits.

A zip is never extracted by its own names: each member is copied, with a byte budget, to a numbered file in a
folder of ours, so names like `../../x` or absolute paths go nowhere; its name is only shown, cleaned. Before
anything is read, the zip's own directory record must promise few enough members and bytes (zip bombs), and
`zipfile` stops reading a member at its declared size.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from asr_pt.audio import MAX_BYTES_PER_SECOND
from asr_pt.settings import DEFAULTS

MAX_FILES = DEFAULTS.batch_max_files
MAX_TOTAL_SECONDS = DEFAULTS.batch_max_seconds
MAX_NAME_LENGTH = 120
END_OF_DIRECTORY = b"PK\x05\x06"
END_OF_DIRECTORY_FORMAT = "<4s4H2LH"  # signature, disk numbers, entries here and in all, directory size and offset
COPY_BLOCK = 1 << 20
SAFE_SUFFIX = re.compile(r"\.[a-z0-9]{1,5}")  # kept on the copy: soundfile and ffmpeg go by it


class UploadError(ValueError):
    """Uploads refused as a whole (too many files, a zip that would unpack too large); written for the visitor."""


@dataclass(frozen=True)
class Upload:
    """One file to transcribe: the name to show and where it lies, or why it could not be taken."""

    name: str
    path: Path | None
    error: str | None = None


def display_name(name: str, fallback: str) -> str:
    """The last part of a path as people may see it: no folders, no control characters, bounded length."""
    base = PurePosixPath(str(name).replace("\\", "/")).name
    base = "".join(char for char in base if not unicodedata.category(char).startswith("C")).strip()
    return base[:MAX_NAME_LENGTH] or fallback


def gather(
    paths: Sequence[str | Path],
    workdir: Path,
    *,
    max_files: int = MAX_FILES,
    max_bytes: int = round(MAX_TOTAL_SECONDS * MAX_BYTES_PER_SECOND),
) -> list[Upload]:
    """The files to transcribe, zips expanded into `workdir`, in the order given.

    Raises UploadError when there are more than `max_files` files in all (zip members counted) or a zip would
    unpack to more than `max_bytes`; a member that cannot be unpacked becomes an Upload with its error.
    """
    uploads: list[Upload] = []
    unpacked = 0
    for path in paths:
        path = Path(path)
        if zipfile.is_zipfile(path):
            members = _expand_zip(path, workdir, len(uploads), max_files - len(uploads), max_bytes - unpacked)
            unpacked += sum(member.path.stat().st_size for member in members if member.path is not None)
            uploads += members
        else:
            uploads.append(Upload(display_name(path.name, f"file {len(uploads) + 1}"), path))
        if len(uploads) > max_files:
            raise UploadError(f"too many files: at most {max_files} at once, zip members included")
    return uploads


def _expand_zip(path: Path, workdir: Path, first: int, max_files: int, max_bytes: int) -> list[Upload]:
    entries = _declared_entries(path)
    if entries > 2 * max_files + 100:  # folders are entries too; a directory this long is refused before parsing
        raise UploadError(f"{path.name} holds {entries} entries: at most {max_files} more files can be taken")
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir() and not _is_clutter(m.filename)]
            if len(members) > max_files:
                raise UploadError(f"too many files: {path.name} holds {len(members)}, at most {max_files} more fit")
            declared = sum(member.file_size for member in members)
            if declared > max_bytes:
                raise UploadError(
                    f"{path.name} would unpack to {declared / 1e6:.0f} MB; the files of one batch may unpack to at "
                    f"most {max_bytes / 1e6:.0f} MB"
                )
            workdir.mkdir(parents=True, exist_ok=True)
            return [_copy_member(archive, member, workdir, first + i) for i, member in enumerate(members)]
    except zipfile.BadZipFile as error:
        raise UploadError(f"{path.name} is not a readable zip: {error}") from error


def _declared_entries(path: Path) -> int:
    """The member count the zip's end record declares, read before `zipfile` parses (and holds) every entry."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 22 - 0xFFFF))  # the end record is 22 bytes, followed by a comment of up to 64 KiB
        tail = f.read()
    position = tail.rfind(END_OF_DIRECTORY)
    if position < 0 or len(tail) - position < 22:
        raise UploadError(f"{path.name} is not a readable zip: no end of central directory")
    entries = struct.unpack(END_OF_DIRECTORY_FORMAT, tail[position : position + 22])[4]
    if entries == 0xFFFF:
        raise UploadError(f"{path.name} is a ZIP64 archive, which is far larger than a batch of clips can be")
    return entries


def _is_clutter(name: str) -> bool:
    """What macOS's Finder adds to zips it makes: resource forks and folder metadata, not audio."""
    return name.startswith("__MACOSX/") or PurePosixPath(name).name.startswith("._") or name.endswith(".DS_Store")


def _copy_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, workdir: Path, index: int) -> Upload:
    name = display_name(member.filename, f"file {index + 1}")
    suffix = PurePosixPath(name).suffix.lower()
    target = workdir / (f"{index:04d}" + (suffix if SAFE_SUFFIX.fullmatch(suffix) else ""))
    if member.flag_bits & 0x1:
        return Upload(name, None, "the zip member is encrypted; add it unencrypted")
    try:  # zipfile reads a member only up to its declared size, which gather() has budgeted
        with archive.open(member) as source, open(target, "wb") as destination:
            shutil.copyfileobj(source, destination, COPY_BLOCK)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError, OSError, zlib.error) as error:
        target.unlink(missing_ok=True)
        return Upload(name, None, f"could not be unpacked from the zip: {error}")
    return Upload(name, target)
