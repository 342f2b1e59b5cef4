"""The reference model detects "sheila" in a long recording, at the right times and nowhere else.

A 30 s WAV file is built from held-out (test-split speaker) clips of a mid-size embedded
dataset: keyword clips and other words (confusers included) at known times, 1 s or more
apart, over the dataset's background noise. The reference model (``BASE`` with the base
recipe) streams over it at a threshold chosen on the validation split, and must detect every
keyword once, within 250 ms of the end of the spoken word, and nothing else; the command
line must print the same detections. Words the reference confuses with the keyword on
whole validation clips are left out of the recording (see ``CONFUSED_RATE``); cut-off
words, which the windows of a stream hold and whole clips never do, stay in.

The trained reference differs from one CPU model to another (float sums in another order),
so nothing here rests on one model's exact outputs: each recorded clip is one the model at
hand gets right on its own by a margin (see ``build_recording``), and the assertions are on
what streaming adds. Measured over ten training seeds, standing in for ten machines
(docs/streaming.md): every keyword was found once, its first firing window 80 ms before to
190 ms after the word's end (tolerance 250 ms), and every window holding no keyword stayed
at least 0.38 logits under the threshold.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from kws.audio import SAMPLE_RATE, read_clip, read_resampled
from kws.augment import AugmentationConfig
from kws.feature_cache import load_or_build_features
from kws.features import LogMel
from kws.metrics import threshold_for_false_alarms
from kws.model import BASE, CRNN
from kws.reference import load_or_train
from kws.speech_commands import index_speech_commands, load_noise
from kws.streaming import Detection, detect
from kws.synth import CONFUSERS, EmbeddedDatasetConfig, generate_embedded_dataset
from kws.training import BASE_RECIPE, keyword_probs

REPO_ROOT = Path(__file__).resolve().parents[2]

# Mid-size: a reference good enough to separate held-out keywords from everything else in
# about a minute on one core. A high clip SNR keeps each word's end visible in its energy.
# Twice the default share of confusers, and 30 % of the speakers for validation, give
# about 20 validation clips of each confuser: enough to tell which ones the reference
# confuses (see CONFUSED_RATE), where the default's 7 or so missed "she".
DATASET = EmbeddedDatasetConfig(
    num_clips=2500,
    keyword_share=0.2,
    confuser_share=0.3,
    num_speakers=60,
    validation_percentage=30.0,
    testing_percentage=20.0,
    snr_db=(20.0, 30.0),
    noise_seconds=10.0,
)
# The base recipe at a higher learning rate and for longer: 20 epochs at 3e-4 leave the
# probabilities of this small training split bunched below 0.9.
RECIPE = dataclasses.replace(BASE_RECIPE, learning_rate=1e-3, epochs=40)
MAX_FA_RATE = 0.05  # of validation negatives reaching the threshold; see the threshold rule
KEYWORDS, CONFUSER_CLIPS, OTHER_CLIPS = 5, 4, 4  # placed in the recording
# A word of which more than this share of validation clips reach the threshold is one the
# reference confuses with the keyword on whole clips ("sheena", "sheet", ...): a limit of the
# model, measured by au_fa_fr and benchmarks/confusions.py, not of streaming, so the
# recording leaves it out. Cut-off words and windows between words stay in.
CONFUSED_RATE = 0.1
# Logits between the threshold and a recorded clip's score in its own window (noise
# included): keywords at least this far above, other words this far below. Negatives are
# many and most score far below, so their margin is larger; see build_recording.
KEYWORD_MARGIN = 0.1
NEGATIVE_MARGIN = 1.5
TOLERANCE_S = 0.25  # a detection this close to a keyword's end is that keyword's
BACKGROUND_RMS = 0.01  # -40 dBFS: audible noise between and under the words
FRAME = 160  # samples: 10 ms frames for the word-end estimate


@dataclass(frozen=True)
class Recording:
    path: Path
    keyword_ends_s: list[float]  # end of each spoken keyword, seconds from the start


@dataclass(frozen=True)
class Reference:
    model: CRNN
    threshold: float
    left_out: set[str]  # words the reference confuses with the keyword on whole clips
    recording: Recording
    detections: list[Detection]  # streamed over the recording read back from disk


def word_end_s(clip: torch.Tensor) -> float:
    """End of the word in a clip: the end of the last 10 ms frame within 20 dB of the loudest.

    The clips' noise is 20-30 dB under the word's mean power, so noise frames stay below.
    """
    frames = clip[: clip.numel() // FRAME * FRAME].view(-1, FRAME)
    rms = frames.pow(2).mean(dim=1).sqrt()
    last = int(torch.nonzero(rms >= 0.1 * rms.max()).max())
    return (last + 1) * FRAME / SAMPLE_RATE


def confused_words(index, probs: torch.Tensor, threshold: float) -> set[str]:
    """Negative words of which over ``CONFUSED_RATE`` of the validation clips reach it."""
    reached: dict[str, list[bool]] = {}
    for clip, prob in zip(index.split("validation"), probs.tolist(), strict=True):
        if clip.label == 0:
            reached.setdefault(clip.word, []).append(prob >= threshold)
    return {word for word, hits in reached.items() if np.mean(hits) > CONFUSED_RATE}


def logit(probability: float) -> float:
    probability = min(max(probability, 1e-12), 1.0 - 1e-12)
    return math.log(probability / (1.0 - probability))


def build_recording(
    index, model: CRNN, threshold: float, left_out: set[str], path: Path
) -> Recording:
    """Test-split clips at known times, 1-1.5 s apart, over the dataset's noise; a WAV file.

    Each clip starts on the 100 ms grid of the windows' ends. A slot takes the first clip of
    its kind (keyword, confuser, other word; no word of ``left_out``) that the model gets
    right by a margin, noise included: a keyword ``KEYWORD_MARGIN`` logits above the
    threshold in one of the two windows that end first after the word does, any other word
    ``NEGATIVE_MARGIN`` below it in the window that holds the clip exactly. Which held-out
    clips one trained model gets right is a matter of its training (another CPU sums floats
    in another order and trains another model), so the recording is chosen by the model;
    what is checked is what streaming adds: the windows at every other offset, across word
    edges and over the gaps.
    """
    rng = np.random.default_rng(0)
    testing = [c for c in index.split("testing") if c.word not in left_out]
    kinds = {
        "keyword": [c for c in testing if c.label == 1],
        "confuser": [c for c in testing if c.word in CONFUSERS],
        "other": [c for c in testing if c.label == 0 and c.word not in CONFUSERS],
    }
    for clips in kinds.values():
        rng.shuffle(clips)
    slots = ["keyword"] * KEYWORDS + ["confuser"] * CONFUSER_CLIPS + ["other"] * OTHER_CLIPS
    slots = [slots[i] for i in rng.permutation(len(slots))]
    starts, t = [], 1.0
    for _ in slots:
        starts.append(t)
        t += 1.0 + round(float(rng.uniform(1.0, 1.5)), 1)  # the clip, then a gap of 1-1.5 s
    total = round((t + 1.0) * SAMPLE_RATE)
    noise = torch.cat([n / n.pow(2).mean().sqrt() for n in load_noise(index.noise_files)])
    audio = BACKGROUND_RMS * noise.repeat(total // noise.numel() + 1)[:total]
    bound = logit(threshold)
    ends = []
    for kind, start in zip(slots, starts, strict=True):
        begin = round(start * SAMPLE_RATE)
        while True:
            assert kinds[kind], f"no {kind} clip left that the reference gets right by the margin"
            samples = read_clip(kinds[kind].pop().path)
            # The clip with the second before it and the gap's first 200 ms after it, as the
            # stream will hold them.
            mixed = audio[begin - SAMPLE_RATE : begin + round(1.2 * SAMPLE_RATE)].clone()
            clip = slice(SAMPLE_RATE, 2 * SAMPLE_RATE)
            mixed[clip] = (mixed[clip] + samples).clamp(-1, 1)
            # A keyword in one of the two windows that end first after the word does (both
            # within the tolerance), another word in the window that holds it exactly.
            if kind == "keyword":
                first = math.ceil(word_end_s(samples) * 10) / 10
                lags = (first, first + 0.1)
            else:
                lags = (1.0,)
            windows = torch.stack([mixed[round(lag * SAMPLE_RATE) :][:SAMPLE_RATE] for lag in lags])
            score = float(keyword_probs(model, LogMel()(windows)).max())
            margin = logit(score) - bound
            if (margin >= KEYWORD_MARGIN) if kind == "keyword" else (-margin >= NEGATIVE_MARGIN):
                break
        audio[begin - SAMPLE_RATE : begin + round(1.2 * SAMPLE_RATE)] = mixed
        if kind == "keyword":
            ends.append(start + word_end_s(samples))
    soundfile.write(path, audio.numpy(), SAMPLE_RATE, subtype="PCM_16")
    return Recording(path, ends)


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Reference:
    """The dataset, its features, the trained reference, its threshold and the recording."""
    folder = tmp_path_factory.mktemp("detection")
    root = generate_embedded_dataset(folder / "data", DATASET, progress=False)
    index = index_speech_commands(root)
    features = load_or_build_features(index, folder / "features", AugmentationConfig(), False)
    trained = load_or_train(features, BASE, RECIPE, folder / "models")
    model = trained.model()
    # Chosen on validation clips only: the lowest that at most 5 % of their negatives reach.
    probs = keyword_probs(model, features.features["validation"])
    threshold = threshold_for_false_alarms(probs, features.labels["validation"], MAX_FA_RATE)
    left_out = confused_words(index, probs, threshold)
    recording = build_recording(index, model, threshold, left_out, folder / "recording.wav")
    detections = detect(model, read_resampled(recording.path), threshold=threshold)
    return Reference(model, threshold, left_out, recording, detections)


def test_each_keyword_is_detected_once_within_250_ms_of_its_end(reference: Reference) -> None:
    ends = reference.recording.keyword_ends_s
    assert len(ends) == KEYWORDS
    near = {
        round(end, 2): [
            d.time_s for d in reference.detections if abs(d.time_s - end) <= TOLERANCE_S
        ]
        for end in ends
    }
    assert all(len(times) == 1 for times in near.values()), near


def test_few_words_are_left_out(reference: Reference) -> None:
    assert len(reference.left_out) <= len(CONFUSERS) // 2, reference.left_out


def test_nothing_else_is_detected(reference: Reference) -> None:
    ends = reference.recording.keyword_ends_s
    elsewhere = [
        d for d in reference.detections if all(abs(d.time_s - e) > TOLERANCE_S for e in ends)
    ]
    assert elsewhere == []


def test_the_command_line_prints_the_same_detections(
    reference: Reference, tmp_path: Path, fake_export
) -> None:
    folder = fake_export(tmp_path / "reference", reference.model)
    wav = reference.recording.path
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "run_study.py"), "stream", "--model", str(folder),
         "--wav", str(wav), "--threshold", repr(reference.threshold)],
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert reference.detections
    expected = [
        f"keyword at {d.time_s:.2f} s (window {d.time_s - 1:.2f}-{d.time_s:.2f} s), "
        f"probability {d.probability:.3f}"
        for d in reference.detections
    ]
    assert result.stdout.decode().splitlines()[:-1] == expected
