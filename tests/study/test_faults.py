"""Bad inputs and faults through the real command line, as a user meets them.

Every case runs ``run_study.py`` in a subprocess on real files (real SQLite databases, real
WAV files, a real closed port, real read-only and full file systems made with ``unshare``)
and asserts what docs/reliability.md promises: exit code 2, one ``error:`` line that names
the culprit (file, flag, field or URL), no traceback, and the storage unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pytest
import soundfile
import torch

from kws.model import BASE, CRNN
from study.export import load_weights, read_export
from study.runner import run
from study.settings import StudySettings
from study.storage import make_storage

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_STUDY = str(REPO_ROOT / "run_study.py")


def _run(*args: str, cwd: Path, stdin: bytes | None = None, wrap: str | None = None):
    """``python run_study.py ARGS`` in ``cwd``; ``wrap`` is a shell line run around it, with
    ``CMD`` standing for the command (for the namespaced file systems)."""
    command = [sys.executable, RUN_STUDY, *args]
    if wrap is not None:
        line = wrap.replace("CMD", " ".join(_quote(part) for part in command))
        command = ["unshare", "-rm", "sh", "-c", line]
    return subprocess.run(command, cwd=cwd, capture_output=True, input=stdin, timeout=300)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def refused(result: subprocess.CompletedProcess, *culprits: str) -> str:
    """Assert a clean refusal; returns stderr."""
    stderr = result.stderr.decode(errors="backslashreplace")
    assert result.returncode == 2, (result.returncode, stderr)
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    for culprit in culprits:
        assert culprit in errors[0], (culprit, errors[0])
    return errors[0]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _namespaces_work() -> bool:
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(
    shutil.which("unshare") is None or not _namespaces_work(),
    reason="unshare -rm (user and mount namespaces) is not available here",
)


# ---------------------------------------------------------------------------------------
# A real study, and a valid export folder, that the cases break in one way each.


@pytest.fixture(scope="module")
def study_db(settings_in, tmp_path_factory) -> StudySettings:
    """A finished two-trial study in its own SQLite file; with a bar of 0.5 every trained
    trial is feasible (au_fa_fr is at most 0.25) whatever training reaches on this CPU."""
    folder = tmp_path_factory.mktemp("fault-study")
    settings = dataclasses.replace(
        settings_in(folder), trials=2, max_epochs=1, device="cpu", max_au_fa_fr=0.5
    )
    run(settings)
    return settings


def _db(settings: StudySettings) -> Path:
    return Path(settings.storage.removeprefix("sqlite:///"))


@pytest.fixture
def export_dir(tmp_path: Path, fake_export) -> Path:
    return fake_export(tmp_path / "export", CRNN(BASE))


def _edit_config(folder: Path, edit: Callable[[dict], object]) -> Path:
    path = folder / "config.json"
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))
    return path


# ---------------------------------------------------------------------------------------
# Configs read from disk: validated completely, naming the field and the file.


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d["model"].pop("hidden_size"), "hidden_size"),
        (lambda d: d["training"].update(fp16="no"), "fp16"),
        (lambda d: d["model"].update(hidden_size="32"), "hidden_size"),
        (lambda d: d["model"].update(hidden_size=0), "hidden_size"),
        (lambda d: d["model"].update(kernel_size=[5]), "kernel_size"),
        (lambda d: d["settings"].update(trials=1.5), "trials"),
        (lambda d: d["training"].update(lr=0.1), "lr"),
        (lambda d: d.update(model=[]), "model"),
        (lambda d: d["held_out"].pop("test_bar"), "held_out.test_bar"),
        (lambda d: d["held_out"].update(passes="yes"), "held_out.passes"),
        (lambda d: d["held_out"].update(val_au_fa_fr=[]), "held_out.val_au_fa_fr"),
        (lambda d: d["metrics"].update(score=float("nan")), "metrics.score"),
        (lambda d: d["study"].update(trial_number="7"), "study.trial_number"),
    ],
    ids=["missing", "string-bool", "string-int", "out-of-range", "short-pair",
         "float-for-int", "unknown", "not-an-object", "figure-missing", "figure-string-bool",
         "figure-empty-list", "figure-nan", "figure-string-int"],
)  # fmt: skip
def test_a_bad_config_field_is_refused_naming_it_and_the_file(
    export_dir: Path, tmp_path: Path, edit, field: str
) -> None:
    path = _edit_config(export_dir, edit)
    result = _run("train", "--config", str(path), "--out", str(tmp_path / "out"), cwd=tmp_path)
    refused(result, field, str(path))
    assert not (tmp_path / "out").exists() and not (tmp_path / "storage").exists()


def test_an_export_written_before_the_weight_average_existed_reads_as_trained_without(
    export_dir: Path,
) -> None:
    def forget_ema_decay_and_masks(document: dict) -> None:
        del document["training"]["ema_decay"], document["settings"]["ema_decay"]
        del document["settings"]["freq_mask"], document["settings"]["time_mask"]

    _edit_config(export_dir, forget_ema_decay_and_masks)
    export = read_export(export_dir)
    assert export.training.ema_decay == 0.0 and export.settings.ema_decay == 0.0
    # Its students were masked as the course masks the reference.
    assert (export.settings.freq_mask, export.settings.time_mask) == (15, 35)
    assert load_weights(export_dir).config == BASE


def test_a_config_that_is_not_json_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    refused(_run("train", "--config", str(path), cwd=tmp_path), str(path))


def test_a_missing_config_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "config.json"
    refused(_run("train", "--config", str(path), cwd=tmp_path), str(path))


# ---------------------------------------------------------------------------------------
# Exported weights: only a state dict of the config's model is ever loaded.


class _Payload:
    """A pickle that would run a command when unpickled without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("content", ["random bytes", "a pickled list", "a malicious pickle",
                                     "another architecture"])  # fmt: skip
def test_a_bad_model_file_is_refused_naming_it(
    export_dir: Path, tmp_path: Path, content: str
) -> None:
    weights, marker = export_dir / "model.pt", tmp_path / "pwned"
    if content == "random bytes":
        weights.write_bytes(np.random.default_rng(0).bytes(4000))
    elif content == "a pickled list":
        torch.save([1, 2, 3], weights)
    elif content == "a malicious pickle":
        weights.write_bytes(pickle.dumps(_Payload(marker)))
    else:
        torch.save(CRNN(dataclasses.replace(BASE, hidden_size=8)).state_dict(), weights)
    wav = tmp_path / "clip.wav"
    soundfile.write(wav, np.zeros(16000, dtype=np.float32), 16000)
    error = refused(_run("stream", "--model", str(export_dir), "--wav", str(wav), cwd=tmp_path),
                    str(weights))  # fmt: skip
    assert "weights_only=False" not in error
    assert not marker.exists(), "the pickle's code ran"


# ---------------------------------------------------------------------------------------
# Audio and stream settings.


def _float_wav(path: Path, samples: np.ndarray) -> Path:
    soundfile.write(path, samples.astype(np.float32), 16000, subtype="FLOAT")
    return path


@pytest.mark.parametrize("problem", ["missing", "not audio", "NaN samples"])
def test_a_bad_wav_is_refused_naming_it(export_dir: Path, tmp_path: Path, problem: str) -> None:
    wav = tmp_path / "in.wav"
    if problem == "not audio":
        wav.write_text("hello")
    elif problem == "NaN samples":
        samples = np.zeros(16000)
        samples[100] = np.nan
        _float_wav(wav, samples)
    refused(_run("stream", "--model", str(export_dir), "--wav", str(wav), cwd=tmp_path), str(wav))


@pytest.mark.parametrize(
    ("flags", "culprit"),
    [(["--chunk-ms", "0.01"], "--chunk-ms"), (["--threshold", "2"], "--threshold"),
     (["--smooth", "0"], "--smooth"), (["--window-ms", "10"], "--window-ms")],
)  # fmt: skip
def test_a_bad_stream_setting_is_refused_naming_the_flag(
    export_dir: Path, tmp_path: Path, flags: list[str], culprit: str
) -> None:
    wav = _float_wav(tmp_path / "in.wav", np.zeros(16000))
    result = _run("stream", "--model", str(export_dir), "--wav", str(wav), *flags, cwd=tmp_path)
    refused(result, culprit)


def test_a_wav_file_on_stdin_is_refused(export_dir: Path, tmp_path: Path) -> None:
    wav = _float_wav(tmp_path / "in.wav", np.zeros(16000))
    result = _run("stream", "--model", str(export_dir), "--wav", "-", cwd=tmp_path,
                  stdin=wav.read_bytes())  # fmt: skip
    refused(result, "stdin")


# ---------------------------------------------------------------------------------------
# Storage URLs and databases.


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends


@pytest.mark.parametrize("command", ["export", "report", "dashboard"])
@pytest.mark.parametrize("kind", ["malformed", "unknown dialect", "closed port", "corrupt file",
                                  "truncated file", "missing file"])  # fmt: skip
def test_a_bad_storage_is_refused_naming_it_and_nothing_is_created(
    study_db: StudySettings, tmp_path: Path, command: str, kind: str
) -> None:
    path = tmp_path / "study.db"
    if kind == "malformed":
        url = "not a url"
    elif kind == "unknown dialect":
        url = "foo://"
    elif kind == "closed port":
        url = f"postgresql+psycopg://kws:secret@127.0.0.1:{_closed_port()}/kws"
    else:
        url = f"sqlite:///{path}"
        if kind == "corrupt file":
            path.write_bytes(np.random.default_rng(1).bytes(8192))
        elif kind == "truncated file":
            path.write_bytes(_db(study_db).read_bytes()[:3000])
    before = path.read_bytes() if path.exists() else None
    error = refused(_run(command, "--storage", url, cwd=tmp_path),
                    "--storage", url.replace(":secret@", ":***@"))  # fmt: skip
    assert "secret" not in error
    assert (path.read_bytes() if path.exists() else None) == before
    assert not (tmp_path / "storage").exists()


@pytest.mark.parametrize("command", ["export", "report", "dashboard"])
def test_a_wrong_study_name_lists_the_studies_and_changes_nothing(
    study_db: StudySettings, tmp_path: Path, command: str
) -> None:
    before = _digest(_db(study_db))
    result = _run(command, "--storage", study_db.storage, "--study-name", "no-such-study",
                  cwd=tmp_path)  # fmt: skip
    refused(result, "no-such-study", repr(study_db.name))
    assert _digest(_db(study_db)) == before
    assert optuna.get_all_study_names(make_storage(study_db.storage)) == [study_db.name]


def test_without_a_name_several_studies_are_listed(study_db: StudySettings, tmp_path: Path) -> None:
    copy = tmp_path / "two.db"
    shutil.copy(_db(study_db), copy)
    url = f"sqlite:///{copy}"
    optuna.create_study(study_name="another", storage=make_storage(url))
    before = _digest(copy)
    refused(_run("export", "--storage", url, cwd=tmp_path), "'another'", repr(study_db.name))
    assert _digest(copy) == before


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_storage_is_refused_for_the_study(tmp_path: Path, url: str) -> None:
    refused(_run("--storage", url, "--trials", "1", cwd=tmp_path), url, "in-memory")
    assert not (tmp_path / "storage").exists()


# ---------------------------------------------------------------------------------------
# The study: flags, folders and data, all refused before any training.


@pytest.mark.parametrize(
    ("flags", "culprit"),
    [(["--trials", "0"], "--trials"), (["--max-epochs", "0"], "--max-epochs"),
     (["--heartbeat-interval", "90"], "--heartbeat-interval"),
     (["--max-au-fa-fr", "-1"], "--max-au-fa-fr"), (["--reference-seeds", "0"],
     "--reference-seeds"), (["--n-jobs", "0"], "--n-jobs"),
     (["--confirm-seeds", "0"], "--confirm-seeds"), (["--num-clips", "0"], "--num-clips"),
     (["--num-speakers", "2"], "--num-speakers"),
     (["--data", ".", "--num-clips", "64721"], "--num-clips")],
)  # fmt: skip
def test_a_bad_study_flag_is_refused_naming_it(
    tmp_path: Path, flags: list[str], culprit: str
) -> None:
    refused(_run(*flags, cwd=tmp_path), culprit)
    assert not (tmp_path / "storage").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused_naming_the_flag_before_any_work(tmp_path: Path) -> None:
    refused(_run("--device", "cuda", "--trials", "1", cwd=tmp_path), "--device")
    assert not list(tmp_path.iterdir())  # no dataset, features or storage were made first


def _study_args(settings: StudySettings) -> list[str]:
    return [
        "--storage", settings.storage, "--study-name", settings.name, "--data", settings.data,
        "--trials", str(settings.trials), "--max-epochs", str(settings.max_epochs),
        "--confirm-seeds", str(settings.confirm_seeds), "--data-dir", settings.data_dir,
        "--feature-dir", settings.feature_dir,
        "--model-dir", settings.model_dir, "--artifact-dir", settings.artifact_dir,
        "--device", "cpu", "--no-progress",
    ]  # fmt: skip


@needs_namespaces
@pytest.mark.parametrize("folder", ["artifacts", "storage"])
def test_a_read_only_folder_is_refused_before_any_trial(
    settings_in, tmp_path: Path, folder: str
) -> None:
    settings = dataclasses.replace(settings_in(tmp_path / "run"), trials=1, max_epochs=1)
    read_only = tmp_path / "run" / "ro"
    read_only.mkdir(parents=True)
    if folder == "artifacts":
        settings = dataclasses.replace(settings, artifact_dir=str(read_only / "artifacts"))
        culprit = "--artifact-dir"
    else:
        settings = dataclasses.replace(settings, storage=f"sqlite:///{read_only / 'study.db'}")
        culprit = "--storage"
    wrap = f"mount --bind {read_only} {read_only} && mount -o remount,bind,ro {read_only} && CMD"
    result = _run(*_study_args(settings), cwd=tmp_path, wrap=wrap)
    refused(result, culprit, str(read_only))
    db = Path(settings.storage.removeprefix("sqlite:///"))
    assert not db.exists()


@needs_namespaces
def test_a_full_disk_while_caching_features_names_the_file_and_leaves_nothing(
    tiny_embedded: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "features"
    cache.mkdir()
    wrap = (f"mount -t tmpfs -o size=256k tmpfs {cache} && CMD; code=$?; "
            f"ls -A {cache} >&2; exit $code")  # fmt: skip
    result = _run("prepare", "--data", str(tiny_embedded), "--feature-dir", str(cache),
                  "--no-progress", cwd=tmp_path, wrap=wrap)  # fmt: skip
    error = refused(result, str(cache), "disk")
    listing = result.stderr.decode().split(error, 1)[1].split()
    assert listing == [], f"left in the full folder: {listing}"


def _dataset_copy(tiny_embedded: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "dataset"
    shutil.copytree(tiny_embedded, copy)
    return copy


def test_no_keyword_clip_in_validation_is_refused_before_training(
    settings_in, tiny_embedded: Path, tmp_path: Path
) -> None:
    data = _dataset_copy(tiny_embedded, tmp_path)
    lists = data / "validation_list.txt"
    lines = lists.read_text().splitlines()
    lists.write_text("".join(f"{line}\n" for line in lines if not line.startswith("sheila/")))
    settings = dataclasses.replace(settings_in(tmp_path), data=str(data), trials=1)
    refused(_run(*_study_args(settings), cwd=tmp_path), "validation", "'sheila' clips", "5")
    assert not _db(settings).exists()


@pytest.mark.parametrize("problem", ["NaN samples", "undecodable name"])
def test_a_bad_clip_is_refused_naming_it_before_training(
    settings_in, tiny_embedded: Path, tmp_path: Path, problem: str
) -> None:
    data = _dataset_copy(tiny_embedded, tmp_path)
    if problem == "NaN samples":
        samples = np.full(16000, 0.1)
        samples[5] = np.nan
        _float_wav(data / "bed" / "nanny_nohash_0.wav", samples)
        culprit = "nanny_nohash_0.wav"
    else:
        (data / "bed" / os.fsdecode(b"\xff\xfe_nohash_0.wav")).write_bytes(b"RIFF")
        culprit = "\\udcff\\udcfe_nohash_0.wav"
    settings = dataclasses.replace(settings_in(tmp_path), data=str(data), trials=1)
    refused(_run(*_study_args(settings), cwd=tmp_path), culprit)
    assert not _db(settings).exists()


def test_a_study_continues_only_on_the_same_clips(
    settings_in, tiny_embedded: Path, tmp_path: Path
) -> None:
    data = _dataset_copy(tiny_embedded, tmp_path)
    settings = dataclasses.replace(settings_in(tmp_path), data=str(data), trials=1, max_epochs=1)
    first = _run(*_study_args(settings), cwd=tmp_path)
    assert first.returncode == 0, first.stderr.decode()
    # The same folder by another spelling is the same data: the study continues.
    spelled = dataclasses.replace(settings, data=os.path.relpath(data, tmp_path), trials=2)
    second = _run(*_study_args(spelled), cwd=tmp_path)
    assert second.returncode == 0, second.stderr.decode()
    # The folder changed in place is other data: refused, naming it, nothing trained.
    clip = sorted((data / "bed").glob("*.wav"))[0]
    samples, rate = soundfile.read(clip)
    soundfile.write(clip, 0.5 * samples, rate)
    before = _digest(_db(settings))
    changed = dataclasses.replace(settings, trials=3)
    refused(_run(*_study_args(changed), cwd=tmp_path), "--data", "feature cache key")
    assert _digest(_db(settings)) == before


# ---------------------------------------------------------------------------------------
# What read-only commands replay from a stored study, and what they take from here.


def test_export_finds_the_only_study_and_ignores_the_recorded_device(
    study_db: StudySettings, tmp_path: Path
) -> None:
    copy = tmp_path / "cuda.db"
    shutil.copy(_db(study_db), copy)
    url = f"sqlite:///{copy}"
    study = optuna.load_study(study_name=study_db.name, storage=make_storage(url))
    # As if made on a GPU machine with other cache folders: none of that is replayed here.
    recorded = {**study.user_attrs["settings"], "device": "cuda", "data_dir": "/nowhere"}
    study.set_user_attr("settings", recorded)
    result = _run("export", "--storage", url, "--device", "cpu", "--seeds", "1",
                  "--data-dir", study_db.data_dir, "--feature-dir", study_db.feature_dir,
                  "--model-dir", study_db.model_dir, "--out", str(tmp_path / "out"),
                  cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "out" / "config.json").is_file()
