from __future__ import annotations

import time

import numpy as np
import pytest

from kws.espeak import (
    ENGLISH_VOICES,
    Synthesizer,
    Utterance,
    speak_in_fresh_process,
    voice_variants,
)


@pytest.fixture(scope="module")
def synthesizer() -> Synthesizer:
    return Synthesizer()


def test_voice_variants_include_the_documented_modifiers() -> None:
    variants = voice_variants()
    assert {"m1", "f1", "klatt", "whisper", "croak"} <= set(variants)


@pytest.mark.parametrize("voice", ENGLISH_VOICES)
def test_every_english_voice_speaks_a_word_of_plausible_length(
    synthesizer: Synthesizer, voice: str
) -> None:
    samples = synthesizer.speak(Utterance("sheila", f"{voice}+m3", rate=175, pitch=50))
    assert samples.dtype == np.int16
    # "sheila" at 175 words/min: a few hundred ms at 22,050 Hz, and not silent.
    assert 0.15 < len(samples) / 22_050 < 1.0
    assert np.abs(samples).max() > 1000


def test_faster_rate_gives_a_shorter_word(synthesizer: Synthesizer) -> None:
    slow = synthesizer.speak(Utterance("seven", "en-us", rate=100, pitch=50))
    fast = synthesizer.speak(Utterance("seven", "en-us", rate=300, pitch=50))
    assert len(fast) < 0.7 * len(slow)


def test_unknown_voice_is_rejected_by_name(synthesizer: Synthesizer) -> None:
    with pytest.raises(ValueError, match="no-such-voice"):
        synthesizer.speak(Utterance("yes", "no-such-voice", rate=175, pitch=50))


def test_a_fresh_process_speaks_the_same_samples() -> None:
    """Reproducibility rests on this: the same batch in two new processes is identical.

    ``en-029+f3`` adds noise from espeak-ng's clock-seeded generator: without the reseed
    in Synthesizer, processes started in different seconds disagree.
    """
    batch = [
        Utterance("sheila", "en-029+f3", rate=160, pitch=40),
        Utterance("tequila", "en-us+klatt4", rate=190, pitch=70),
        Utterance("seven", "en+whisper", rate=150, pitch=50),
    ]
    first = speak_in_fresh_process(batch, seed=0)
    time.sleep(1.1)  # a different second on the clock
    second = speak_in_fresh_process(batch, seed=0)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fresh_process_returns_one_array_per_utterance_in_order() -> None:
    """The worker protocol keeps the batch's order: a long word stays longer than a short one."""
    batch = [Utterance("up", "en-us+m1", 175, 50), Utterance("tequila", "en-us+m1", 120, 60)]
    short, long = speak_in_fresh_process(batch, seed=3)
    assert short.dtype == long.dtype == np.int16
    assert 0 < len(short) < len(long)
    assert speak_in_fresh_process([], seed=0) == []
