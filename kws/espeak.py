"""Speech synthesis with libespeak-ng through ctypes (the library ships in ``espeakng-loader``).

Two things make espeak-ng's output vary, and both are pinned here:

- Some voice variants (``f3``, ``whisper`` and others) add noise from espeak-ng's own
  random generator, which is seeded from the clock at start-up: :class:`Synthesizer`
  reseeds it with ``espeak_ng_SetRandSeed``.
- espeak-ng keeps state between utterances (oscillator phase, echo buffers), so the same
  word differs slightly with what was spoken before in the process.

A fresh process that seeds the generator and speaks the same sequence therefore always
gives the same samples, which is how :mod:`kws.synth` makes datasets reproducible: every
batch is spoken by ``python -m kws.espeak`` in a new interpreter
(:func:`speak_in_fresh_process`).

This module imports only ctypes, json and numpy so that such a process starts in a fraction
of a second; a multiprocessing "spawn" worker would re-import the caller's main module,
torch included, for every batch.
"""

from __future__ import annotations

import ctypes
import dataclasses
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import espeakng_loader
import numpy as np

ESPEAK_SAMPLE_RATE = 22_050  # Hz, what libespeak-ng synthesizes

# espeak_AUDIO_OUTPUT and espeak_PARAMETER values from speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_PARAM_RATE = 1  # words per minute, 80..450
_PARAM_PITCH = 3  # 0..100
_PARAM_RANGE = 4  # pitch range, 0..100

# The English voices of espeak-ng's data ("en-Shaw" is excluded: it reads Shavian script).
ENGLISH_VOICES = (
    "en",
    "en-us",
    "en-029",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-gb-x-rp",
    "en-us-nyc",
)


def voice_variants() -> tuple[str, ...]:
    """Names of espeak-ng's voice-variant modifiers (``m1``, ``f3``, ``klatt4``, ``whisper``...)."""
    variants_dir = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
    return tuple(sorted(path.name for path in variants_dir.iterdir() if path.is_file()))


@dataclass(frozen=True)
class Utterance:
    """One word to speak: voice is ``<language>+<variant>``; rate in words/min, pitch 0..100."""

    text: str
    voice: str
    rate: int
    pitch: int
    pitch_range: int = 50


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class Synthesizer:
    """A process-wide libespeak-ng instance; ``speak`` returns 22,050 Hz int16 samples.

    ``seed`` seeds espeak-ng's noise generator (see the module docstring).
    """

    def __init__(self, seed: int = 0) -> None:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        data_path = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0)
        if rate != ESPEAK_SAMPLE_RATE:
            raise RuntimeError(f"libespeak-ng failed to initialize (returned {rate})")
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # kept alive: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        lib.espeak_ng_SetRandSeed(seed)
        self._lib = lib

    def _collect(self, wav: ctypes.Array, num_samples: int, _events: ctypes.c_void_p) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0  # 0 = continue synthesis

    def speak(self, utterance: Utterance) -> np.ndarray:
        """Synthesize one utterance: int16 samples at 22,050 Hz, shape ``(time,)``."""
        if self._lib.espeak_SetVoiceByName(utterance.voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {utterance.voice!r}")
        self._lib.espeak_SetParameter(_PARAM_RATE, utterance.rate, 0)
        self._lib.espeak_SetParameter(_PARAM_PITCH, utterance.pitch, 0)
        self._lib.espeak_SetParameter(_PARAM_RANGE, utterance.pitch_range, 0)
        self._chunks.clear()
        text = utterance.text.encode()
        status = self._lib.espeak_Synth(text, len(text) + 1, 0, 0, 0, 0, None, None)
        if status != 0:
            raise RuntimeError(f"espeak-ng failed on {utterance!r} (error {status})")
        if not self._chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._chunks)


def speak_batch(utterances: list[Utterance], seed: int = 0) -> list[np.ndarray]:
    """Speak a batch in this process; run it in a fresh process for reproducible samples."""
    synthesizer = Synthesizer(seed)
    return [synthesizer.speak(utterance) for utterance in utterances]


def speak_in_fresh_process(utterances: list[Utterance], seed: int = 0) -> list[np.ndarray]:
    """Speak a batch in a new ``python -m kws.espeak`` process: same input, same samples."""
    request = json.dumps({"seed": seed, "utterances": [dataclasses.asdict(u) for u in utterances]})
    result = subprocess.run(
        [sys.executable, "-m", "kws.espeak"], input=request.encode(), capture_output=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"espeak-ng worker failed: {result.stderr.decode(errors='replace')}")
    with np.load(io.BytesIO(result.stdout)) as arrays:
        samples, lengths = arrays["samples"], arrays["lengths"]
    return np.split(samples, np.cumsum(lengths)[:-1]) if len(lengths) else []


def _main() -> None:
    """Worker: JSON ``{"seed", "utterances"}`` on stdin -> npz (samples, lengths) on stdout."""
    request = json.load(sys.stdin)
    spoken = speak_batch([Utterance(**u) for u in request["utterances"]], request["seed"])
    buffer = io.BytesIO()
    np.savez(
        buffer,
        samples=np.concatenate(spoken) if spoken else np.zeros(0, np.int16),
        lengths=np.array([len(s) for s in spoken], dtype=np.int64),
    )
    sys.stdout.buffer.write(buffer.getvalue())


if __name__ == "__main__":
    _main()
