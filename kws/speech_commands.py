"""Index a folder in the Google Speech Commands v0.01/v0.02 layout and load its clips.

Layout (Warden, 2018)::

    root/<word>/<speaker>_nohash_<n>.wav     1 s (or shorter) 16 kHz mono clips
    root/_background_noise_/*.wav            long noise recordings, optional
    root/validation_list.txt, testing_list.txt   official splits, optional

The index only looks at names (no audio is decoded), so it is cheap even for the
65k-clip dataset; ``load_waveforms`` / ``load_noise`` read the audio. Every file the
index does not use is either an error (anything unexpected inside a word folder) or
listed in ``SpeechCommandsIndex.ignored`` with the reason: nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from kws.audio import CLIP_SAMPLES, read_clip, read_resampled
from kws.errors import UserError

V001_WORDS: tuple[str, ...] = (
    "bed", "bird", "cat", "dog", "down", "eight", "five", "four", "go", "happy",
    "house", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven",
    "sheila", "six", "stop", "three", "tree", "two", "up", "wow", "yes", "zero",
)  # fmt: skip
KEYWORD = "sheila"
BACKGROUND_NOISE_DIR = "_background_noise_"
SPLITS: tuple[str, ...] = ("training", "validation", "testing")
SPLIT_METHODS: tuple[str, ...] = ("auto", "official", "hash", "random")
VALIDATION_LIST = "validation_list.txt"
TESTING_LIST = "testing_list.txt"

# From the dataset README / TensorFlow's speech_commands/input_data.py: the hash is
# reduced modulo 2**27 so that the split of a file never changes as the dataset grows.
MAX_NUM_WAVS_PER_CLASS = 2**27 - 1
_NOHASH = re.compile(r"_nohash_.*$")
# Root-level files that are documentation, not data; ignored (and reported) by name.
_DOC_PREFIXES = ("readme", "license", "licence", "copying", "source", "provenance", "manifest")


class DatasetError(UserError, ValueError):
    """The folder does not follow the Speech Commands layout; the message names the path."""


@dataclass(frozen=True)
class Clip:
    """One labelled clip: ``label`` is 1 for the keyword folder and 0 for every other word."""

    path: Path
    word: str
    speaker: str
    label: int
    split: str


@dataclass(frozen=True)
class SpeechCommandsIndex:
    """What ``index_speech_commands`` found: clips sorted by path, noise files, and why.

    ``split_method`` is the rule actually used ("official", "hash" or "random"; "auto"
    resolves to one of the first two). ``ignored`` holds ``"<relative path>: <reason>"``
    for every file or folder that was present but not used.
    """

    root: Path
    keyword: str
    clips: tuple[Clip, ...]
    noise_files: tuple[Path, ...]
    split_method: str
    ignored: tuple[str, ...]

    def split(self, name: str) -> tuple[Clip, ...]:
        """The clips of one split ("training", "validation" or "testing"), in path order."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        return tuple(clip for clip in self.clips if clip.split == name)

    def summary(self, max_ignored: int = 20) -> str:
        """A small table of clips per class and split, the split rule and what was ignored.

        Meant for logs: it is what one checks first when a metric looks wrong (an empty
        validation split, a keyword missing from testing, an unexpected folder skipped).
        """
        lines = [
            f"Speech Commands index of {self.root}",
            f"keyword {self.keyword!r}, split method: {self.split_method}",
            f"{'split':<12}{'keyword':>9}{'other':>9}{'total':>9}",
        ]
        for name in (*SPLITS, "all"):
            clips = self.clips if name == "all" else self.split(name)
            positives = sum(clip.label for clip in clips)
            row = f"{name:<12}{positives:>9}{len(clips) - positives:>9}{len(clips):>9}"
            lines.append(row)
        lines.append(f"background noise files: {len(self.noise_files)}")
        if self.ignored:
            lines.append(f"ignored ({len(self.ignored)}):")
            lines.extend(f"  {entry}" for entry in self.ignored[:max_ignored])
            if len(self.ignored) > max_ignored:
                lines.append(f"  ... and {len(self.ignored) - max_ignored} more")
        return "\n".join(lines)


# au_fa_fr on a split with fewer keyword (or other) clips than this moves by over 20 % with
# each clip, as much as one training seed moves it: one clip would decide the quality bar.
MIN_CLIPS_PER_CLASS = 5


def require_evaluable(index: SpeechCommandsIndex) -> None:
    """Refuse a dataset whose validation or testing split cannot give a meaningful au_fa_fr.

    Raises:
        DatasetError: a held-out split has fewer than :data:`MIN_CLIPS_PER_CLASS` keyword or
            other clips; the message says how many it has and how many are needed.
    """
    for name in SPLITS[1:]:
        clips = index.split(name)
        keyword = sum(clip.label for clip in clips)
        for what, count in (
            (f"{index.keyword!r} clips", keyword),
            ("other clips", len(clips) - keyword),
        ):
            if count < MIN_CLIPS_PER_CLASS:
                raise DatasetError(
                    f"{index.root}: the {name} split holds {count} {what}, and at least "
                    f"{MIN_CLIPS_PER_CLASS} are needed for a meaningful au_fa_fr; use a larger "
                    "dataset (or other split lists)"
                )


def which_set(filename: str | Path, validation_percentage: float, testing_percentage: float) -> str:
    """The split of a file by the dataset README's hash-of-speaker rule.

    Everything after ``_nohash_`` in the base name is dropped before hashing, so all
    clips of one speaker land in the same split (no speaker leaks between splits), and a
    file's split depends only on its name, never on which other files exist.

    Returns:
        "training", "validation" or "testing".
    """
    hash_name = _NOHASH.sub("", Path(filename).name)
    hash_hex = hashlib.sha1(hash_name.encode("utf-8")).hexdigest()
    percentage_hash = (int(hash_hex, 16) % (MAX_NUM_WAVS_PER_CLASS + 1)) * (
        100.0 / MAX_NUM_WAVS_PER_CLASS
    )
    if percentage_hash < validation_percentage:
        return "validation"
    if percentage_hash < validation_percentage + testing_percentage:
        return "testing"
    return "training"


def index_speech_commands(
    root: str | Path,
    keyword: str = KEYWORD,
    words: Iterable[str] | None = None,
    split: str = "auto",
    validation_percentage: float = 10.0,
    testing_percentage: float = 10.0,
    seed: int = 0,
) -> SpeechCommandsIndex:
    """Index every clip under ``root`` with its label and split, without reading audio.

    Args:
        root: folder in the Speech Commands layout (v0.01, v0.02 or a subset of either).
        keyword: the word folder whose clips get label 1.
        words: word folders to use; None means every word folder present (all
            subfolders except ``_background_noise_`` and hidden ones). A given list must
            contain ``keyword`` and every listed folder must exist.
        split: "auto" uses the official ``validation_list.txt``/``testing_list.txt`` when
            both exist and the hash rule otherwise; "official" requires the lists; "hash"
            is the README's hash-of-speaker rule; "random" shuffles clips with ``seed``,
            which puts one speaker's clips into several splits (speaker leakage makes
            validation optimistic), so it is only ever used when asked for explicitly.
        validation_percentage, testing_percentage: shares in percent for "hash" and
            "random" (the official lists were made with the hash rule at 10/10).
        seed: seed of the "random" split only.

    Raises:
        DatasetError: the layout is wrong; the message names the folder or file.
        ValueError: an argument is invalid.
    """
    if split not in SPLIT_METHODS:
        raise ValueError(f"unknown split method {split!r}; expected one of {SPLIT_METHODS}")
    _check_percentages(validation_percentage, testing_percentage)
    root = Path(root).expanduser().resolve()
    if not root.exists():
        raise DatasetError(f"{root}: dataset folder does not exist")
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset root is not a folder")

    ignored: list[str] = []
    word_dirs = _word_folders(root, ignored)
    selected = _select_words(root, word_dirs, keyword, words, ignored)
    files = {word: _word_files(root / word, ignored) for word in selected}
    noise_files = _noise_files(root, ignored)
    method, official = _resolve_split(root, split, ignored)
    _ignore_root_files(root, ignored)

    paths = [root / word / name for word in selected for name in files[word]]
    if method == "official":
        splits = _official_splits(root, paths, official)
    elif method == "hash":
        splits = [which_set(path, validation_percentage, testing_percentage) for path in paths]
    else:
        splits = _random_splits(len(paths), validation_percentage, testing_percentage, seed)

    clips = tuple(
        Clip(
            path=path,
            word=path.parent.name,
            speaker=_NOHASH.sub("", path.stem),
            label=int(path.parent.name == keyword),
            split=name,
        )
        for path, name in zip(paths, splits, strict=True)
    )
    return SpeechCommandsIndex(
        root=root,
        keyword=keyword,
        clips=clips,
        noise_files=noise_files,
        split_method=method,
        ignored=tuple(ignored),
    )


def load_waveforms(clips: Sequence[Clip], progress: bool = True) -> torch.Tensor:
    """Read clips as the models see them (mono, 16 kHz, 1 s) into one tensor.

    Returns:
        float32 tensor of shape ``(len(clips), CLIP_SAMPLES)``, rows in ``clips`` order.

    Raises:
        AudioFileError: a clip cannot be read; its message names the file.
    """
    waveforms = torch.empty(len(clips), CLIP_SAMPLES, dtype=torch.float32)
    for row, clip in enumerate(
        tqdm(clips, desc="reading clips", unit="clip", disable=not progress)
    ):
        waveforms[row] = read_clip(clip.path)
    return waveforms


def load_noise(paths: Iterable[Path]) -> list[torch.Tensor]:
    """Read background-noise recordings as mono 16 kHz float32 ``(time,)`` tensors.

    Unlike clips they keep their full length (about a minute each): augmentation cuts a
    random 1 s window out of them.

    Raises:
        AudioFileError: a file cannot be read; its message names the file.
    """
    return [read_resampled(path) for path in paths]


def _check_percentages(validation_percentage: float, testing_percentage: float) -> None:
    """Both shares in [0, 100) with something left for training."""
    if validation_percentage < 0 or testing_percentage < 0:
        raise ValueError("validation and testing percentages must not be negative")
    if validation_percentage + testing_percentage >= 100:
        raise ValueError("validation + testing percentages must leave some clips for training")


def _is_hidden(path: Path) -> bool:
    """Dot files (.DS_Store, macOS ``._x.wav`` resource forks, .git) are never data."""
    return path.name.startswith(".")


def _word_folders(root: Path, ignored: list[str]) -> list[str]:
    """Names of the candidate word folders under ``root``, sorted."""
    names = []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.name == BACKGROUND_NOISE_DIR:
            continue
        if _is_hidden(entry):
            ignored.append(f"{entry.name}/: hidden folder")
        else:
            names.append(entry.name)
    return names


def _select_words(
    root: Path, present: list[str], keyword: str, words: Iterable[str] | None, ignored: list[str]
) -> list[str]:
    """The word folders to index: all present ones, or the requested ones (checked)."""
    if keyword not in present:
        listing = ", ".join(present) or "none"
        raise DatasetError(
            f"{root / keyword}: keyword folder {keyword!r} not found; word folders present: "
            f"{listing}"
        )
    if words is None:
        return present
    requested = sorted(set(words))
    if keyword not in requested:
        raise ValueError(f"words must contain the keyword {keyword!r}")
    missing = [word for word in requested if word not in present]
    if missing:
        raise DatasetError(
            f"{root}: requested word folder(s) missing: {', '.join(missing)} "
            f"(present: {', '.join(present)})"
        )
    ignored.extend(
        f"{word}/: not in the requested words" for word in present if word not in requested
    )
    return requested


def _word_files(folder: Path, ignored: list[str]) -> list[str]:
    """The .wav names in one word folder, sorted; anything else there is an error.

    A stray file in a word folder usually means a broken copy or extraction, and dropping
    it would silently change the class balance, so it stops the indexing instead.
    """
    names = []
    for entry in sorted(folder.iterdir()):
        if not entry.name.isprintable() or _undecodable(entry.name):
            shown = ascii(entry.name)[1:-1]  # \udcff for an undecodable byte, \n for a newline
            raise DatasetError(f"{folder}/{shown}: file name is not valid UTF-8 text; rename it")
        if _is_hidden(entry):
            ignored.append(f"{folder.name}/{entry.name}: hidden file")
        elif entry.is_file() and entry.suffix.lower() == ".wav":
            names.append(entry.name)
        else:
            kind = "folder" if entry.is_dir() else "non-.wav file"
            raise DatasetError(f"{entry}: unexpected {kind} in word folder {folder.name!r}")
    if not names:
        raise DatasetError(f"{folder}: word folder has no .wav files")
    return names


def _undecodable(name: str) -> bool:
    """A name whose bytes were not valid in the file system's encoding (surrogate escapes):
    it cannot be hashed for the split rule or written into a list file."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _noise_files(root: Path, ignored: list[str]) -> tuple[Path, ...]:
    """The .wav files of ``_background_noise_`` (none if the folder is missing or empty).

    The real dataset keeps a README.md there, so non-.wav files are reported, not errors.
    """
    folder = root / BACKGROUND_NOISE_DIR
    if not folder.is_dir():
        return ()
    wavs = []
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix.lower() == ".wav" and not _is_hidden(entry):
            wavs.append(entry)
        else:
            ignored.append(f"{BACKGROUND_NOISE_DIR}/{entry.name}: not a background-noise .wav")
    return tuple(wavs)


def _resolve_split(root: Path, split: str, ignored: list[str]) -> tuple[str, dict[str, Path]]:
    """The split rule to use and, for "official", the two list files by split name."""
    lists = {"validation": root / VALIDATION_LIST, "testing": root / TESTING_LIST}
    present = {name: path for name, path in lists.items() if path.is_file()}
    if split == "official" and len(present) < len(lists):
        missing = ", ".join(str(path) for name, path in lists.items() if name not in present)
        raise DatasetError(f"{root}: split='official' but the official list is missing: {missing}")
    if split == "official" or (split == "auto" and len(present) == len(lists)):
        return "official", lists
    method = "hash" if split == "auto" else split
    for path in present.values():
        why = f"the {method} rule was asked for" if split != "auto" else "its counterpart is absent"
        ignored.append(f"{path.name}: official list not used, {why}")
    return method, {}


def _ignore_root_files(root: Path, ignored: list[str]) -> None:
    """Report the root-level files that are not data (README, LICENSE, .DS_Store, ...)."""
    for entry in sorted(root.iterdir()):
        if not entry.is_file() or entry.name in (VALIDATION_LIST, TESTING_LIST):
            continue
        if _is_hidden(entry):
            reason = "hidden file"
        elif entry.name.lower().startswith(_DOC_PREFIXES):
            reason = "documentation at the root"
        else:
            reason = "file at the root, outside any word folder"
        ignored.append(f"{entry.name}: {reason}")


def _official_splits(root: Path, paths: list[Path], lists: dict[str, Path]) -> list[str]:
    """Split names for ``paths`` from the official lists; unlisted clips are training.

    Raises:
        DatasetError: a listed file does not exist, or a file is in both lists.
    """
    assigned: dict[str, str] = {}
    for name, list_path in lists.items():
        for line in list_path.read_text(encoding="utf-8").splitlines():
            relative = line.strip()
            if not relative:
                continue
            if not (root / relative).is_file():
                raise DatasetError(f"{list_path}: lists {relative}, which does not exist")
            if relative in assigned:
                raise DatasetError(
                    f"{list_path}: {relative} is already in the {assigned[relative]} list"
                )
            assigned[relative] = name
    return [assigned.get(path.relative_to(root).as_posix(), "training") for path in paths]


def _random_splits(
    count: int, validation_percentage: float, testing_percentage: float, seed: int
) -> list[str]:
    """Seeded per-clip split: a shuffled order, first the validation share, then testing."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    n_validation = round(count * validation_percentage / 100)
    n_testing = round(count * testing_percentage / 100)
    splits = ["training"] * count
    for rank, index in enumerate(order):
        if rank < n_validation:
            splits[index] = "validation"
        elif rank < n_validation + n_testing:
            splits[index] = "testing"
    return splits
