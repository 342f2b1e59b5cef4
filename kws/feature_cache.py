"""Log-mel features of a whole dataset, computed once and cached on disk in fp16.

A study trains a hundred models on the same clips, so spectrograms and waveform
augmentation are computed once: the clean features of every split plus ``num_views``
augmented views of the training split (see :mod:`kws.augment`), and cut-off words for
each view, which are negatives. Training then only indexes tensors and applies SpecAugment
masks per batch.

The cache file is keyed by the dataset's content (every clip's bytes, path, label and
split; every noise file's bytes), the feature parameters and the augmentation recipe, so
any change to any of them gives a new file and a stale cache is never read. Hashing the
content reads every clip, so each key is also recorded under ``keys/`` by the files' sizes
and modification times, and a later run whose files all match reads none of them
(:func:`known_feature_cache_key`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from kws.audio import read_clip
from kws.augment import AugmentationConfig, augment, can_cut_off, cut_off, treat
from kws.errors import UserError
from kws.features import FRAMES_PER_CLIP, HOP_LENGTH, LOG_CLAMP, N_FFT, N_MELS, WIN_LENGTH, LogMel
from kws.files import WriteError, load_cache, save_atomically, write_text_atomically
from kws.speech_commands import SPLITS, Clip, SpeechCommandsIndex, load_noise

FEATURE_VERSION = 2  # bump when feature or augmentation code changes its output
_CHUNK = 512  # clips decoded, augmented and transformed at a time (bounds memory)
_KEYS_DIR = "keys"  # under the cache folder: content keys by file sizes and times


@dataclass(frozen=True)
class CachedFeatures:
    """Features of one dataset. Shapes: ``features[split]`` is ``(N, n_mels, frames)`` fp16,
    ``labels[split]`` is ``(N,)`` int64, ``training_views`` is ``(views, N_train, n_mels,
    frames)`` fp16, rows in the order of ``index.split(split)``. ``cutoff_views`` is ``(1 +
    views, M, n_mels, frames)`` fp16: cut-off words (label 0) for the clean features and for
    each view, M of them per view, drawn afresh for each.
    """

    key: str
    features: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]
    training_views: torch.Tensor
    cutoff_views: torch.Tensor

    def num_bytes(self) -> int:
        tensors = [
            *self.features.values(),
            *self.labels.values(),
            self.training_views,
            self.cutoff_views,
        ]
        return sum(t.numel() * t.element_size() for t in tensors)


def _recipe(augmentation: AugmentationConfig) -> bytes:
    return json.dumps(
        {
            "version": FEATURE_VERSION,
            "n_fft": N_FFT,
            "win_length": WIN_LENGTH,
            "hop_length": HOP_LENGTH,
            "n_mels": N_MELS,
            "log_clamp": LOG_CLAMP,
            "augmentation": augmentation.to_dict(),
        },
        sort_keys=True,
    ).encode()


def feature_cache_key(
    index: SpeechCommandsIndex, augmentation: AugmentationConfig, progress: bool = False
) -> str:
    """24 hex digits over the dataset's content, feature parameters and augmentation.

    Reads every clip: at the size of Speech Commands that is minutes from a cold disk, so
    ``progress`` shows a bar, and :func:`known_feature_cache_key` avoids it for files
    already hashed.
    """
    digest = hashlib.blake2b(_recipe(augmentation), digest_size=12)
    for clip in tqdm(index.clips, desc="hashing clips", unit="clip", disable=not progress):
        relative = clip.path.relative_to(index.root).as_posix()
        digest.update(f"{relative}|{clip.label}|{clip.split}|".encode())
        digest.update(clip.path.read_bytes())
    for path in index.noise_files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def known_feature_cache_key(
    index: SpeechCommandsIndex,
    augmentation: AugmentationConfig,
    cache_dir: str | Path,
    progress: bool = False,
) -> str:
    """:func:`feature_cache_key`, without reading a clip when every file has the size and
    modification time (in ns) it had when a cache in ``cache_dir`` was built from it.

    As git's index and rsync do: editing a file changes its modification time, so changed
    data is still hashed anew; only a rewrite that restores both size and time would go
    unseen. Reading 105,829 clips takes minutes on a cold disk; their metadata, a second.
    """
    remembered = _remembered(cache_dir, _stat_fingerprint(index, augmentation))
    return remembered or feature_cache_key(index, augmentation, progress)


def _stat_fingerprint(index: SpeechCommandsIndex, augmentation: AugmentationConfig) -> str:
    digest = hashlib.blake2b(_recipe(augmentation), digest_size=12)
    for clip in index.clips:
        stat = clip.path.stat()
        relative = clip.path.relative_to(index.root).as_posix()
        digest.update(
            f"{relative}|{clip.label}|{clip.split}|{stat.st_size}|{stat.st_mtime_ns}|".encode()
        )
    for path in index.noise_files:
        stat = path.stat()
        digest.update(f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}|".encode())
    return digest.hexdigest()


def _memo_path(cache_dir: str | Path, fingerprint: str) -> Path:
    return Path(cache_dir) / _KEYS_DIR / f"{fingerprint}.json"


def _remembered(cache_dir: str | Path, fingerprint: str) -> str | None:
    """The content key recorded for ``fingerprint``, if its cache file still exists."""
    try:
        key = json.loads(_memo_path(cache_dir, fingerprint).read_text())["key"]
    except (OSError, ValueError, KeyError, TypeError):  # absent or not ours: hash the clips
        return None
    if not (isinstance(key, str) and (Path(cache_dir) / f"{key}.pt").is_file()):
        return None
    return key


def load_or_build_features(
    index: SpeechCommandsIndex,
    cache_dir: str | Path = "storage/features",
    augmentation: AugmentationConfig = AugmentationConfig(),
    progress: bool = True,
    key: str | None = None,
) -> CachedFeatures:
    """Features of ``index``: read from ``<cache_dir>/<key>.pt`` or computed and saved there.

    ``key`` is :func:`feature_cache_key` of ``index`` and ``augmentation`` when the caller
    has it already (it reads every clip's bytes); the files' sizes and modification times
    are recorded beside the cache for :func:`known_feature_cache_key`.
    """
    fingerprint = _stat_fingerprint(index, augmentation)
    key = (
        key
        or _remembered(cache_dir, fingerprint)
        or feature_cache_key(index, augmentation, progress)
    )
    path = Path(cache_dir) / f"{key}.pt"
    if path.is_file():
        features = _load(path, key)
    else:
        features = build_features(index, augmentation, progress, key)
        _save(features, path)
    # Only once the cache file exists: a failed build (disk full) leaves nothing behind. A
    # cache folder shared read-only is used as it is, the clips hashed on every run.
    with contextlib.suppress(WriteError):
        write_text_atomically(json.dumps({"key": key}), _memo_path(cache_dir, fingerprint))
    return features


def build_features(
    index: SpeechCommandsIndex,
    augmentation: AugmentationConfig = AugmentationConfig(),
    progress: bool = True,
    key: str = "",
) -> CachedFeatures:
    """Compute every split's log-mel features and the training views, without caching."""
    noises = load_noise(index.noise_files)
    generator = torch.Generator().manual_seed(augmentation.seed)
    log_mel = LogMel()
    features, labels = {}, {}
    views = cutoffs = torch.empty(0)
    for split in SPLITS:
        clips = index.split(split)
        training = split == "training"
        features[split], split_views, split_cutoffs = _compute(
            clips, log_mel, noises, augmentation, training, generator, progress, split
        )
        labels[split] = torch.tensor([clip.label for clip in clips], dtype=torch.int64)
        if training:
            views, cutoffs = split_views, split_cutoffs
    return CachedFeatures(
        key=key, features=features, labels=labels, training_views=views, cutoff_views=cutoffs
    )


@torch.no_grad()
def _compute(
    clips: Sequence[Clip],
    log_mel: LogMel,
    noises: list[torch.Tensor],
    augmentation: AugmentationConfig,
    training: bool,
    generator: torch.Generator,
    progress: bool,
    split: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clean features ``(N, n_mels, frames)``, and for the training split the views ``(V, N,
    n_mels, frames)`` and cut-off words ``(1 + V, M, n_mels, frames)`` (else empty)."""
    num_views = augmentation.num_views if training else 0
    shape = (len(clips), N_MELS, FRAMES_PER_CLIP)
    clean = torch.empty(shape, dtype=torch.float16)
    views = torch.empty((num_views, *shape), dtype=torch.float16)
    cutoffs: list[torch.Tensor] = []  # (1 + V, chunk's M, n_mels, frames) per chunk
    with tqdm(
        total=len(clips), desc=f"features ({split})", unit="clip", disable=not progress
    ) as bar:
        for start in range(0, len(clips), _CHUNK):
            chunk = clips[start : start + _CHUNK]
            waveforms = torch.stack([read_clip(clip.path) for clip in chunk])  # (B, 16000)
            stop = start + len(chunk)
            clean[start:stop] = log_mel(waveforms).half()
            for view in range(num_views):
                augmented = augment(waveforms, noises, augmentation, generator)
                views[view, start:stop] = log_mel(augmented).half()
            if training and augmentation.cutoff_share > 0:
                keyword = torch.tensor([clip.label == 1 for clip in chunk])
                cutoffs.append(
                    _cutoff_views(waveforms, keyword, log_mel, noises, augmentation, generator)
                )
            bar.update(len(chunk))
    if not cutoffs:
        return clean, views, torch.empty((1 + num_views, 0, *shape[1:]), dtype=torch.float16)
    return clean, views, torch.cat(cutoffs, dim=1)


def _cutoff_views(
    waveforms: torch.Tensor,
    keyword: torch.Tensor,
    log_mel: LogMel,
    noises: list[torch.Tensor],
    augmentation: AugmentationConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """``(1 + V, M, n_mels, frames)`` fp16: cut-off words from a chunk's ``(B, time)`` clips
    (``keyword`` ``(B,)`` marks the keyword's), M = ``cutoff_share`` of B; the first
    untreated, the others treated like a view."""
    usable = torch.nonzero(can_cut_off(waveforms)).flatten()
    count = min(round(augmentation.cutoff_share * len(waveforms)), len(usable))
    low, high = augmentation.cutoff_visible
    out = []
    for view in range(1 + augmentation.num_views):
        rows = usable[torch.randperm(len(usable), generator=generator)[:count]]
        highs = torch.where(keyword[rows], augmentation.keyword_cutoff_visible, high)
        cut = cut_off(waveforms[rows], (low, highs), generator)
        if view > 0:
            cut = treat(cut, noises, augmentation, generator)
        out.append(log_mel(cut).half())
    return torch.stack(out)


def _save(features: CachedFeatures, path: Path) -> None:
    payload = {
        "key": features.key,
        "features": features.features,
        "labels": features.labels,
        "training_views": features.training_views,
        "cutoff_views": features.cutoff_views,
    }
    save_atomically(payload, path)


def _load(path: Path, key: str) -> CachedFeatures:
    payload = load_cache(path, mmap=True)  # gigabytes at the size of Speech Commands
    if payload.get("key") != key:
        raise UserError(
            f"{path}: feature cache holds key {payload.get('key')!r}, expected {key!r}; "
            "delete it to rebuild it"
        )
    return CachedFeatures(
        key=key,
        features=payload["features"],
        labels=payload["labels"],
        training_views=payload["training_views"],
        cutoff_views=payload["cutoff_views"],
    )
