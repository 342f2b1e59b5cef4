"""Writing files so that a failure leaves nothing partial, and checking folders up front.

Caches and exports are read by other processes and by later runs, so a half-written one
must never be seen: each is written under a temporary name beside its destination and
renamed over it (a rename within one folder is atomic). A failure (disk full, Ctrl-C)
removes the temporary file and names the destination.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import torch

from kws.errors import UserError


class WriteError(UserError):
    """A file or folder could not be written; the message names it and the cause."""


def save_atomically(payload: dict[str, object], path: Path) -> None:
    """``torch.save`` into a temporary file renamed over ``path``: a reader (another worker
    process) never sees a half-written file, and a failed write leaves none.

    Raises:
        WriteError: the write failed (disk full, no permission); nothing is left behind.
    """
    _write_atomically(lambda partial: torch.save(payload, partial), Path(path))


def write_text_atomically(text: str, path: Path) -> None:
    """:func:`save_atomically` for a text file."""
    _write_atomically(lambda partial: partial.write_text(text), Path(path))


def _write_atomically(write: Callable[[Path], object], path: Path) -> None:
    _make_folder(path.parent)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        write(partial)
        partial.replace(path)
    except OSError as error:
        raise WriteError(f"{path}: could not be written ({_reason(error)})") from error
    except RuntimeError as error:  # how torch.save reports a failed write
        raise WriteError(
            f"{path}: could not be written ({_reason(error)}); is the disk full?"
        ) from error
    finally:
        partial.unlink(missing_ok=True)


def replace_folder(folder: Path, write: Callable[[Path], None]) -> None:
    """``write(partial)`` fills a new folder that then takes ``folder``'s place whole.

    An existing ``folder`` is kept until the new one is complete, so a failure leaves the
    old export (or nothing) and never a mix.

    Raises:
        WriteError: a write failed; the partial folder is removed.
    """
    folder = Path(folder)
    _make_folder(folder.parent)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    old = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex[:8]}")
    try:
        write(partial)
        if folder.exists():
            folder.rename(old)
        partial.rename(folder)
    except (OSError, RuntimeError) as error:
        if old.exists() and not folder.exists():
            old.rename(folder)
        raise WriteError(f"{folder}: could not be written ({_reason(error)})") from error
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def check_writable(folder: str | Path, flag: str) -> None:
    """Create ``folder`` if needed and write and remove a file in it, before any work.

    A real write, not a permission check: as root every permission check passes, while a
    read-only file system still refuses.

    Raises:
        WriteError: the folder cannot be created or written; the message names ``flag``.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise WriteError(f"{flag} {folder}: not writable ({_reason(error)})") from error


def load_cache(path: Path, mmap: bool = False) -> dict:
    """A cache file written by :func:`save_atomically`, read with ``weights_only=True``;
    with ``mmap`` its tensors are pages of the file, read when touched and shared by every
    process that maps it, instead of a private copy of the whole file.

    Raises:
        UserError: the file is not a readable cache (damaged, or not ours); it names the
            file, which can be deleted to rebuild it.
    """
    try:
        payload = torch.load(path, weights_only=True, mmap=mmap)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise UserError(
            f"{path}: not a readable cache file ({_reason(error)}); delete it to rebuild it"
        ) from error
    if not isinstance(payload, dict):
        raise UserError(f"{path}: not a cache file of this project; delete it to rebuild it")
    return payload


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WriteError(f"{folder}: folder could not be created ({_reason(error)})") from error


def _reason(error: BaseException) -> str:
    """The cause in a few words: the OS's own for OSError, else the first line."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
