"""Log-mel features of a whole dataset, computed once and cached on disk in fp16.

A study trains a hundred models on the same clips, so spectrograms and waveform
augmentation are computed once: the clean features of every split plus ``num_views``
augmented views of the training split (see :mod:`kws.augment`). Training then only
indexes tensors and applies SpecAugment masks per batch.

The cache file is keyed by the dataset's content (every clip's bytes, path, label and
split; every noise file's bytes), the feature parameters and the augmentation recipe, so
any change to any of them gives a new file and a stale cache is never read.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from kws.audio import read_clip
from kws.augment import AugmentationConfig, augment
from kws.features import FRAMES_PER_CLIP, HOP_LENGTH, LOG_CLAMP, N_FFT, N_MELS, WIN_LENGTH, LogMel
from kws.speech_commands import SPLITS, Clip, SpeechCommandsIndex, load_noise

FEATURE_VERSION = 1  # bump when feature or augmentation code changes its output
_CHUNK = 512  # clips decoded, augmented and transformed at a time (bounds memory)


@dataclass(frozen=True)
class CachedFeatures:
    """Features of one dataset. Shapes: ``features[split]`` is ``(N, n_mels, frames)`` fp16,
    ``labels[split]`` is ``(N,)`` int64, ``training_views`` is ``(views, N_train, n_mels,
    frames)`` fp16, rows in the order of ``index.split(split)``.
    """

    key: str
    features: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]
    training_views: torch.Tensor

    def num_bytes(self) -> int:
        tensors = [*self.features.values(), *self.labels.values(), self.training_views]
        return sum(t.numel() * t.element_size() for t in tensors)


def feature_cache_key(index: SpeechCommandsIndex, augmentation: AugmentationConfig) -> str:
    """24 hex digits over the dataset's content, feature parameters and augmentation."""
    digest = hashlib.blake2b(digest_size=12)
    recipe = {
        "version": FEATURE_VERSION,
        "n_fft": N_FFT,
        "win_length": WIN_LENGTH,
        "hop_length": HOP_LENGTH,
        "n_mels": N_MELS,
        "log_clamp": LOG_CLAMP,
        "augmentation": augmentation.to_dict(),
    }
    digest.update(json.dumps(recipe, sort_keys=True).encode())
    for clip in index.clips:
        relative = clip.path.relative_to(index.root).as_posix()
        digest.update(f"{relative}|{clip.label}|{clip.split}|".encode())
        digest.update(clip.path.read_bytes())
    for path in index.noise_files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def load_or_build_features(
    index: SpeechCommandsIndex,
    cache_dir: str | Path = "storage/features",
    augmentation: AugmentationConfig = AugmentationConfig(),
    progress: bool = True,
) -> CachedFeatures:
    """Features of ``index``: read from ``<cache_dir>/<key>.pt`` or computed and saved there."""
    key = feature_cache_key(index, augmentation)
    path = Path(cache_dir) / f"{key}.pt"
    if path.is_file():
        return _load(path, key)
    features = build_features(index, augmentation, progress, key)
    _save(features, path)
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
    views = torch.empty(0)
    for split in SPLITS:
        clips = index.split(split)
        num_views = augmentation.num_views if split == "training" else 0
        features[split], split_views = _compute(
            clips, log_mel, noises, augmentation, num_views, generator, progress, split
        )
        labels[split] = torch.tensor([clip.label for clip in clips], dtype=torch.int64)
        if split == "training":
            views = split_views
    return CachedFeatures(key=key, features=features, labels=labels, training_views=views)


@torch.no_grad()
def _compute(
    clips: Sequence[Clip],
    log_mel: LogMel,
    noises: list[torch.Tensor],
    augmentation: AugmentationConfig,
    num_views: int,
    generator: torch.Generator,
    progress: bool,
    split: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean features ``(N, n_mels, frames)`` and views ``(num_views, N, n_mels, frames)``."""
    shape = (len(clips), N_MELS, FRAMES_PER_CLIP)
    clean = torch.empty(shape, dtype=torch.float16)
    views = torch.empty((num_views, *shape), dtype=torch.float16)
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
            bar.update(len(chunk))
    return clean, views


def save_atomically(payload: dict[str, object], path: Path) -> None:
    """``torch.save`` into a temporary file renamed over ``path``: a reader (another worker
    process) never sees a half-written cache file, and an interrupted write leaves none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".partial-{os.getpid()}")
    torch.save(payload, partial)
    partial.replace(path)


def _save(features: CachedFeatures, path: Path) -> None:
    payload = {
        "key": features.key,
        "features": features.features,
        "labels": features.labels,
        "training_views": features.training_views,
    }
    save_atomically(payload, path)


def _load(path: Path, key: str) -> CachedFeatures:
    payload = torch.load(path, weights_only=True)
    if payload.get("key") != key:
        raise ValueError(
            f"{path}: feature cache holds key {payload.get('key')!r}, expected {key!r}"
        )
    return CachedFeatures(
        key=key,
        features=payload["features"],
        labels=payload["labels"],
        training_views=payload["training_views"],
    )
