"""Where the clips come from: the embedded synthetic dataset, the official download, or a folder.

``open_dataset`` turns the user's ``--data`` value into a :class:`SpeechCommandsIndex`;
everything downstream (features, training) sees only that index.
"""

from __future__ import annotations

from pathlib import Path

from kws.download import download_speech_commands
from kws.speech_commands import KEYWORD, SpeechCommandsIndex, index_speech_commands
from kws.synth import EmbeddedDatasetConfig, ensure_embedded_dataset

SYNTHETIC = "synthetic"
DOWNLOAD = "download"


def open_dataset(
    data: str = SYNTHETIC,
    data_dir: str | Path = "storage/data",
    keyword: str = KEYWORD,
    split: str = "auto",
    embedded: EmbeddedDatasetConfig = EmbeddedDatasetConfig(),
    progress: bool = True,
) -> SpeechCommandsIndex:
    """Index the dataset named by ``data``.

    Args:
        data: ``"synthetic"`` (the embedded dataset, generated under ``data_dir`` on first
            use; no network), ``"download"`` (the official Speech Commands v0.01 archive,
            downloaded once into ``data_dir``, checksum verified) or the path of a folder
            in the Speech Commands layout.
        data_dir: where generated and downloaded datasets are kept.
        keyword: the word folder whose clips are positives.
        split: ``"auto"``, ``"official"``, ``"hash"`` or ``"random"``
            (see :func:`index_speech_commands`).
        embedded: the embedded dataset's generator settings (``data="synthetic"`` only).
        progress: show progress bars.
    """
    if data == SYNTHETIC:
        root = ensure_embedded_dataset(data_dir, embedded, progress)
    elif data == DOWNLOAD:
        root = download_speech_commands(Path(data_dir), progress=progress)
    else:
        root = Path(data)
    return index_speech_commands(root, keyword=keyword, split=split)
