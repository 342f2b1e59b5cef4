"""Download, verify and safely extract Google Speech Commands (v0.01 by default).

The archive is 1.4 GB, so the download resumes from a ``.part`` file after an
interruption, the SHA-256 is checked before anything is extracted, and extraction
refuses members that would land outside the target folder. A marker file written last
makes a repeated call a no-op without re-hashing gigabytes.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from kws.errors import UserError

SPEECH_COMMANDS_V001_URL = "http://download.tensorflow.org/data/speech_commands_v0.01.tar.gz"
# SHA-256 of that archive as listed for this exact URL in torchaudio's SPEECHCOMMANDS
# dataset: torchaudio/datasets/speechcommands.py, ``_CHECKSUMS`` (torchaudio 2.11.1, the
# version installed here; same value in pytorch/audio src/torchaudio/datasets/).
SPEECH_COMMANDS_V001_SHA256 = "743935421bb51cccdb6bdd152e04c5c70274e935c82119ad7faeec31780d811d"

_CHUNK_BYTES = 1 << 20  # read/hash granularity: 1 MiB
_TIMEOUT_S = 60.0  # per socket operation, not for the whole download
_ARCHIVE_SUFFIX = re.compile(r"\.(tar\.gz|tgz|tar\.bz2|tar\.xz|tar)$")


class DownloadError(UserError, RuntimeError):
    """Downloading or unpacking failed; the message names the URL or file and the reason."""


def download_speech_commands(
    dest: str | Path,
    url: str = SPEECH_COMMANDS_V001_URL,
    sha256: str = SPEECH_COMMANDS_V001_SHA256,
    progress: bool = True,
) -> Path:
    """Make ``dest/<archive name without extension>/`` hold the extracted dataset.

    Steps: download into ``dest/<archive>.part`` (resuming a previous partial download
    with an HTTP Range request), verify its SHA-256, extract it with tarfile's "data"
    filter into a temporary folder, rename that to the final folder, write a completion
    marker beside it and delete the archive (the extracted folder is what is used, and
    the archive would double the 1.4 GB on disk).

    Returns:
        The extracted folder, e.g. ``dest/speech_commands_v0.01``. If its completion
        marker exists the call returns it at once without touching the network.

    Raises:
        DownloadError: network failure (the ``.part`` is kept for a later resume),
            checksum mismatch (the download is deleted), unsafe or corrupt archive, or a
            target folder that exists without a completion marker.
    """
    dest = Path(dest).expanduser()
    archive_name = Path(urllib.parse.urlparse(url).path).name
    target = dest / _ARCHIVE_SUFFIX.sub("", archive_name)
    marker = dest / f"{target.name}.complete"
    if marker.is_file() and target.is_dir():
        return target
    if target.exists():
        raise DownloadError(
            f"{target}: exists without the completion marker {marker.name}; it may be a "
            "partial extraction or someone else's data. Remove it and call again."
        )
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / archive_name
    if not archive.is_file():  # an archive left by an interrupted extraction is reused
        part = dest / f"{archive_name}.part"
        _fetch(url, part, progress)
        part.replace(archive)
    _verify(url, archive, sha256)
    _extract(archive, target)
    marker.write_text(f"{url}\nsha256 {sha256}\n", encoding="utf-8")
    archive.unlink()
    return target


def _fetch(url: str, part: Path, progress: bool) -> None:
    """Download ``url`` into ``part``, continuing from its current size if it exists.

    A 206 answer to the Range request appends; a 200 (server ignores Range) restarts
    from byte 0; a 416 means the part already holds the whole file.
    """
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
            if response.status == 206:
                _check_content_range(url, response.headers.get("Content-Range"), offset, part)
            else:
                offset = 0
            length = response.headers.get("Content-Length")
            expected = offset + int(length) if length is not None else None
            with (
                part.open("ab" if offset else "wb") as sink,
                tqdm(
                    total=expected,
                    initial=offset,
                    unit="B",
                    unit_scale=True,
                    desc=part.name,
                    disable=not progress,
                ) as bar,
            ):
                while chunk := response.read(_CHUNK_BYTES):
                    sink.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            return  # Range Not Satisfiable: nothing left to fetch; the checksum decides
        raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise DownloadError(f"{url}: download failed ({reason}){_kept(part)}") from error
    size = part.stat().st_size
    if expected is not None and size != expected:
        raise DownloadError(f"{url}: connection ended at {size} of {expected} bytes{_kept(part)}")


def _kept(part: Path) -> str:
    """The note for error messages that a partial download stays for the next call."""
    return f"; {part} is kept to resume on the next call" if part.is_file() else ""


def _check_content_range(url: str, content_range: str | None, offset: int, part: Path) -> None:
    """A 206 must continue exactly where the part ends, or appending would corrupt it.

    On a mismatch the part is deleted so that the next call starts cleanly from zero
    instead of failing the same way again.
    """
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (content_range or "").strip())
    if match is None or int(match.group(1)) != offset:
        part.unlink()
        raise DownloadError(
            f"{url}: asked for bytes from {offset} but the server sent Content-Range "
            f"{content_range!r}; deleted {part} so the next call starts from zero"
        )


def _verify(url: str, path: Path, sha256: str) -> None:
    """Compare the SHA-256 of ``path`` with ``sha256``; on mismatch delete the file."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK_BYTES):
            digest.update(chunk)
    actual = digest.hexdigest()
    if actual != sha256.lower():
        path.unlink()
        raise DownloadError(
            f"{url}: SHA-256 mismatch, expected {sha256.lower()}, got {actual}; "
            "the download was deleted"
        )


def _extract(archive: Path, target: Path) -> None:
    """Unpack ``archive`` into ``target`` via a temporary sibling folder.

    tarfile's "data" filter rejects absolute paths, ``..`` traversal, links pointing
    outside the folder and device files; extracting elsewhere first means ``target``
    never exists half-filled.
    """
    if not hasattr(tarfile, "data_filter"):
        raise DownloadError(
            "safe extraction needs tarfile's 'data' filter (Python >= 3.10.12 / 3.11.4)"
        )
    staging = target.with_name(f".{target.name}.extracting")
    if staging.exists():
        shutil.rmtree(staging)  # our own leftover from an interrupted extraction
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(staging, filter="data")
    except (tarfile.TarError, OSError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise DownloadError(f"{archive}: cannot extract safely ({error})") from error
    staging.rename(target)
