"""The embedded dataset: Speech Commands v0.01 in layout, spoken by libespeak-ng, made locally.

It lets the study run offline out of the box. Every clip is a real 16-bit mono WAV file
under ``<word>/<speaker>_nohash_<n>.wav``; ``_background_noise_/`` holds synthesized noise
(white, pink, brown, mains hum, babble of overlapping words) and ``validation_list.txt`` /
``testing_list.txt`` split by speaker, so :func:`kws.speech_commands.index_speech_commands`
reads it exactly like the real dataset.

A "speaker" is an English espeak-ng voice with a voice-variant modifier (``en-us+f3``), a
base pitch and a base rate; each clip varies rate, pitch, onset inside the 1 s window and
gain, and mixes in background noise at an SNR drawn from ``snr_db``. The difficulty knobs
are the fields of :class:`EmbeddedDatasetConfig`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import shutil
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio.functional
from tqdm import tqdm

from kws.audio import CLIP_SAMPLES, SAMPLE_RATE, write_wav
from kws.config import ConfigError
from kws.device import usable_cores
from kws.espeak import (
    ENGLISH_VOICES,
    ESPEAK_SAMPLE_RATE,
    Utterance,
    speak_in_fresh_process,
    voice_variants,
)
from kws.speech_commands import BACKGROUND_NOISE_DIR, KEYWORD, V001_WORDS

GENERATOR_VERSION = 1  # bump when the generator's output changes, to invalidate caches

CONFUSERS = (
    "she", "shield", "sheet", "tequila", "shelter", "sheena", "hyla", "la", "leila", "shiloh",
)  # fmt: skip
"""Words that sound like parts of "sheila"; labelled negative, each in its own folder."""

NOISE_KINDS = ("white_noise", "pink_noise", "brown_noise", "mains_hum", "babble")

_MARKER = "embedded_dataset.json"  # written last: its presence means the folder is complete
_BATCH_SIZE = 400  # utterances spoken per fresh worker process
_BATCHES_AHEAD = 2  # spoken batches per process held at most while earlier ones are written


@dataclass(frozen=True)
class EmbeddedDatasetConfig:
    """What to synthesize. Equal configs give byte-identical datasets."""

    # Calibrated (docs/embedded-dataset.md): a large validation split keeps the reference's
    # au_fa_fr, and so the quality bar, within +-20% across training seeds.
    num_clips: int = 10_000
    keyword_share: float = 0.10  # fraction of clips that are the keyword
    confuser_share: float = 0.15  # fraction of clips that are CONFUSERS
    num_speakers: int = 300
    validation_percentage: float = 55.0  # of speakers, not clips
    testing_percentage: float = 15.0  # of speakers, not clips
    snr_db: tuple[float, float] = (0.0, 30.0)  # background noise in every clip, dB
    gain_db: tuple[float, float] = (-18.0, 0.0)  # peak level of the word, dBFS
    noise_seconds: float = 60.0  # length of each _background_noise_ file
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "snr_db", tuple(float(v) for v in self.snr_db))
        object.__setattr__(self, "gain_db", tuple(float(v) for v in self.gain_db))
        if self.num_clips < 1 or self.num_speakers < 3:
            raise ConfigError(
                f"need num_clips >= 1 and num_speakers >= 3, got {self.num_clips}, "
                f"{self.num_speakers}"
            )
        shares = self.keyword_share + self.confuser_share
        if not (0 <= self.keyword_share <= 1 and 0 <= self.confuser_share <= 1 and shares <= 1):
            raise ConfigError(
                f"keyword_share ({self.keyword_share}) and confuser_share "
                f"({self.confuser_share}) must be in [0, 1] and sum to at most 1"
            )
        held_out = self.validation_percentage + self.testing_percentage
        if not (self.validation_percentage > 0 and self.testing_percentage > 0 and held_out < 100):
            raise ConfigError(
                f"validation_percentage ({self.validation_percentage}) and testing_percentage "
                f"({self.testing_percentage}) must be positive and sum to under 100"
            )
        for name in ("snr_db", "gain_db"):
            low, high = getattr(self, name)
            if low > high:
                raise ConfigError(
                    f"EmbeddedDatasetConfig.{name} must be (low, high), got {(low, high)}"
                )
        if self.noise_seconds < 1:
            raise ConfigError(f"noise_seconds must be >= 1, got {self.noise_seconds}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """12 hex digits naming this config (and generator version) in the cache."""
        payload = json.dumps({"version": GENERATOR_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class _Speaker:
    speaker_id: str  # 8 hex digits, like Speech Commands' anonymized ids
    voice: str
    pitch: int
    rate: int
    split: str


@dataclass(frozen=True)
class _ClipPlan:
    word: str
    speaker: _Speaker
    utterance: Utterance
    onset_fraction: float  # where the word starts inside the free part of the window
    gain_db: float
    snr_db: float
    noise_kind: str


def _make_speakers(config: EmbeddedDatasetConfig, rng: np.random.Generator) -> list[_Speaker]:
    variants = voice_variants()
    pairs = [(voice, variant) for voice in ENGLISH_VOICES for variant in variants]
    chosen = rng.choice(
        len(pairs), size=config.num_speakers, replace=config.num_speakers > len(pairs)
    )
    num_val = max(1, round(config.num_speakers * config.validation_percentage / 100))
    num_test = max(1, round(config.num_speakers * config.testing_percentage / 100))
    order = rng.permutation(config.num_speakers)
    split_of = {int(i): "validation" for i in order[:num_val]}
    split_of.update({int(i): "testing" for i in order[num_val : num_val + num_test]})
    speakers = []
    for i, pair_index in enumerate(chosen):
        voice, variant = pairs[int(pair_index)]
        speakers.append(
            _Speaker(
                speaker_id=f"{int(rng.integers(0, 2**32)):08x}",
                voice=f"{voice}+{variant}",
                pitch=int(rng.integers(20, 81)),
                rate=int(rng.integers(130, 211)),
                split=split_of.get(i, "training"),
            )
        )
    return speakers


def _plan_clips(
    config: EmbeddedDatasetConfig, speakers: list[_Speaker], rng: np.random.Generator
) -> list[_ClipPlan]:
    others = [word for word in V001_WORDS if word != KEYWORD]
    plans = []
    for _ in range(config.num_clips):
        draw = rng.random()
        if draw < config.keyword_share:
            word = KEYWORD
        elif draw < config.keyword_share + config.confuser_share:
            word = CONFUSERS[int(rng.integers(len(CONFUSERS)))]
        else:
            word = others[int(rng.integers(len(others)))]
        speaker = speakers[int(rng.integers(len(speakers)))]
        utterance = Utterance(
            text=word,
            voice=speaker.voice,
            rate=int(np.clip(speaker.rate * rng.uniform(0.85, 1.15), 80, 450)),
            pitch=int(np.clip(speaker.pitch + rng.integers(-8, 9), 0, 100)),
            pitch_range=int(rng.integers(30, 81)),
        )
        plans.append(
            _ClipPlan(
                word=word,
                speaker=speaker,
                utterance=utterance,
                onset_fraction=float(rng.random()),
                gain_db=float(rng.uniform(*config.gain_db)),
                snr_db=float(rng.uniform(*config.snr_db)),
                noise_kind=NOISE_KINDS[int(rng.integers(len(NOISE_KINDS)))],
            )
        )
    return plans


def _spoken(batches: list[list[Utterance]], seed: int) -> Iterator[list[np.ndarray]]:
    """Each batch's samples, in order, each spoken in a fresh process (see kws.espeak for
    why), one per core (at least 2); at most ``_BATCHES_AHEAD`` batches per process wait to
    be consumed, so memory stays bounded however many clips there are."""
    processes = max(2, usable_cores())
    with ThreadPoolExecutor(processes) as pool:  # threads only wait for the processes
        pending: deque[Future[list[np.ndarray]]] = deque()
        for batch in batches:
            pending.append(pool.submit(speak_in_fresh_process, batch, seed))
            if len(pending) > _BATCHES_AHEAD * processes:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _to_16k(samples: list[np.ndarray]) -> list[torch.Tensor]:
    """int16 at 22,050 Hz -> float32 at 16 kHz, leading and trailing silence trimmed.

    Resampled in one padded batch: torchaudio builds its sinc kernel once per call, which
    costs more than the filtering itself for 0.5 s words. Words are cut at 1 s.
    """
    if not samples:
        return []
    batch = torch.zeros(len(samples), ESPEAK_SAMPLE_RATE)  # (N, 1 s at 22,050 Hz)
    lengths = []
    for row, word in zip(batch, samples, strict=True):
        word = _trim_silence(word.astype(np.float32) / 32768.0)[:ESPEAK_SAMPLE_RATE]
        row[: len(word)] = torch.from_numpy(word)
        lengths.append(-(-len(word) * SAMPLE_RATE // ESPEAK_SAMPLE_RATE))  # ceil, 16 kHz samples
    resampled = torchaudio.functional.resample(batch, ESPEAK_SAMPLE_RATE, SAMPLE_RATE)
    return [resampled[i, :length] for i, length in enumerate(lengths)]


def _trim_silence(word: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Drop leading and trailing samples below ``threshold`` x the peak, so onsets are exact."""
    loud = np.flatnonzero(np.abs(word) >= threshold * np.abs(word).max()) if len(word) else []
    if len(loud) == 0:
        return word[:0]
    return word[loud[0] : loud[-1] + 1]


def _colored_noise(num_samples: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    frequencies = np.fft.rfftfreq(num_samples, d=1.0 / SAMPLE_RATE)
    frequencies[0] = frequencies[1]  # no infinite gain at DC
    noise = np.fft.irfft(spectrum / frequencies ** (exponent / 2), n=num_samples)
    return noise / np.abs(noise).max()


def _mains_hum(num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """50 or 60 Hz with odd and even harmonics and a little white noise."""
    time = np.arange(num_samples) / SAMPLE_RATE
    base = 50.0 if rng.random() < 0.5 else 60.0
    hum = sum(
        np.sin(2 * np.pi * base * k * time + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 8)
    )
    hum = hum + 0.05 * rng.standard_normal(num_samples)
    return hum / np.abs(hum).max()


def _babble(num_samples: int, words: list[torch.Tensor], rng: np.random.Generator) -> np.ndarray:
    """Overlapping words (never the keyword) at random times and levels: about 6 talkers."""
    babble = np.zeros(num_samples, dtype=np.float64)
    for word in words:
        samples = word.numpy()
        start = int(rng.integers(0, max(1, num_samples - len(samples))))
        segment = samples[: num_samples - start] * rng.uniform(0.3, 1.0)
        babble[start : start + len(segment)] += segment
    return babble / max(np.abs(babble).max(), 1e-9)


def _babble_utterances(
    config: EmbeddedDatasetConfig, speakers: list[_Speaker], rng: np.random.Generator
) -> list[Utterance]:
    # ~0.5 s words, 6 overlapping talkers -> 12 words per second of babble.
    count = int(config.noise_seconds * 12)
    words = [word for word in V001_WORDS if word != KEYWORD]
    return [
        Utterance(
            text=words[int(rng.integers(len(words)))],
            voice=speakers[int(rng.integers(len(speakers)))].voice,
            rate=int(rng.integers(130, 211)),
            pitch=int(rng.integers(20, 81)),
        )
        for _ in range(count)
    ]


def _noises(
    config: EmbeddedDatasetConfig, babble_words: list[torch.Tensor], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Each of :data:`NOISE_KINDS`, ``noise_seconds`` long, peak 1."""
    samples = int(config.noise_seconds * SAMPLE_RATE)
    return {
        "white_noise": _colored_noise(samples, 0.0, rng),
        "pink_noise": _colored_noise(samples, 1.0, rng),
        "brown_noise": _colored_noise(samples, 2.0, rng),
        "mains_hum": _mains_hum(samples, rng),
        "babble": _babble(samples, babble_words, rng),
    }


def _place(
    word: torch.Tensor, plan: _ClipPlan, noise: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Put the word at its onset in a 1 s window, set its peak level, add noise at the SNR."""
    word = word[:CLIP_SAMPLES].numpy().astype(np.float64)
    peak = np.abs(word).max()
    if peak > 0:
        word = word / peak * 10 ** (plan.gain_db / 20)
    clip = np.zeros(CLIP_SAMPLES, dtype=np.float64)
    onset = int(plan.onset_fraction * (CLIP_SAMPLES - len(word)))
    clip[onset : onset + len(word)] = word
    start = int(rng.integers(0, len(noise) - CLIP_SAMPLES + 1))
    window = noise[start : start + CLIP_SAMPLES]
    # SNR over the word's own samples: power of speech where it is, not diluted by silence.
    speech_power = np.mean(word**2) if len(word) else 0.0
    noise_power = max(np.mean(window**2), 1e-12)
    scale = np.sqrt(speech_power / (noise_power * 10 ** (plan.snr_db / 10)))
    return np.clip(clip + scale * window, -1.0, 1.0)


def generate_embedded_dataset(
    root: str | Path, config: EmbeddedDatasetConfig = EmbeddedDatasetConfig(), progress: bool = True
) -> Path:
    """Synthesize the dataset into ``root`` (created; must not exist yet) and return it.

    Written into ``<root>.partial`` first and renamed at the end, so an interrupted run
    never leaves a folder that looks complete; a failed one (disk full) removes it.
    """
    root = Path(root)
    if root.exists():
        raise FileExistsError(f"{root} already exists; remove it or use ensure_embedded_dataset")
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _generate(partial, config, progress)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # a failed write (disk full) leaves nothing
        raise
    partial.rename(root)
    return root


def _generate(partial: Path, config: EmbeddedDatasetConfig, progress: bool) -> None:
    """Synthesize the whole dataset into the folder ``partial``, a batch of clips at a time.

    The utterances are spoken in batches of the list ``clips + babble``; the babble's
    batches (the last) are spoken first, since every clip is mixed with noise made from
    them. Each batch's samples depend only on its own utterances, and resampling is
    row-wise, so the order changes no byte of the output.
    """
    rng = np.random.default_rng(config.seed)
    speakers = _make_speakers(config, rng)
    plans = _plan_clips(config, speakers, rng)
    babble_plan = _babble_utterances(config, speakers, rng)
    utterances = [p.utterance for p in plans] + babble_plan
    batches = [utterances[i : i + _BATCH_SIZE] for i in range(0, len(utterances), _BATCH_SIZE)]
    first_babble_batch = len(plans) // _BATCH_SIZE
    with tqdm(
        total=len(utterances), desc="synthesizing clips", unit="clip", disable=not progress
    ) as bar:
        tail = [
            word for spoken in _spoken(batches[first_babble_batch:], config.seed) for word in spoken
        ]
        bar.update(len(babble_plan))
        tail_clips = len(plans) - first_babble_batch * _BATCH_SIZE
        babble_words = _to_16k(tail[tail_clips:])
        noises = _noises(config, babble_words, rng)
        for kind, noise in noises.items():
            write_wav(partial / BACKGROUND_NOISE_DIR / f"{kind}.wav", 0.5 * noise)

        clip_batches = itertools.chain(
            _spoken(batches[:first_babble_batch], config.seed),
            [tail[:tail_clips]] if tail_clips else [],
        )
        counts: dict[tuple[str, str], int] = {}
        lists: dict[str, list[str]] = {"validation": [], "testing": []}
        placed = 0
        for spoken in clip_batches:
            for word in _to_16k(spoken):
                plan = plans[placed]
                placed += 1
                n = counts.get((plan.word, plan.speaker.speaker_id), 0)
                counts[(plan.word, plan.speaker.speaker_id)] = n + 1
                relative = f"{plan.word}/{plan.speaker.speaker_id}_nohash_{n}.wav"
                write_wav(partial / relative, _place(word, plan, noises[plan.noise_kind], rng))
                if plan.speaker.split in lists:
                    lists[plan.speaker.split].append(relative)
            bar.update(len(spoken))
    for split, name in (("validation", "validation_list.txt"), ("testing", "testing_list.txt")):
        (partial / name).write_text("".join(f"{line}\n" for line in sorted(lists[split])))
    speakers_table = [dataclasses.asdict(s) for s in speakers]
    (partial / _MARKER).write_text(
        json.dumps(
            {
                "generator_version": GENERATOR_VERSION,
                "config": config.to_dict(),
                "speakers": speakers_table,
            },
            indent=1,
        )
    )


def ensure_embedded_dataset(
    data_dir: str | Path = "storage/data",
    config: EmbeddedDatasetConfig = EmbeddedDatasetConfig(),
    progress: bool = True,
) -> Path:
    """Return ``<data_dir>/embedded-<key>``, generating it first if it is not complete."""
    root = Path(data_dir) / f"embedded-{config.key()}"
    if (root / _MARKER).is_file():
        return root
    if root.exists():
        shutil.rmtree(root)  # incomplete leftovers from an older layout; regenerated below
    return generate_embedded_dataset(root, config, progress)
