"""kws-study command line: a thin layer over ``kws`` and ``study``.

python run_study.py --trials 100             # search (the default command)
python run_study.py prepare                  # dataset + feature cache only
python run_study.py export                   # best feasible trial -> storage/exports/
python run_study.py train --config FILE      # reproduce a model from an exported config
python run_study.py stream --model DIR --wav FILE   # detect the keyword in a recording
python run_study.py dashboard                # optuna-dashboard on the study, 127.0.0.1:8080
python run_study.py report                   # one self-contained HTML file of the study
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import optuna_dashboard
import torch

from kws.audio import SAMPLE_RATE, read_resampled
from kws.data import SYNTHETIC
from kws.device import DEVICES, resolve_device
from kws.errors import UserError
from kws.files import save_atomically
from kws.model import CRNN
from kws.reference import training_data
from kws.speech_commands import KEYWORD, DatasetError, require_evaluable
from kws.streaming import StreamingDetector
from kws.training import evaluate_au_fa_fr, train
from study.export import (
    WEIGHTS_FILE,
    ExportError,
    export_best,
    held_out_summary,
    load_weights,
    read_export,
)
from study.figures import best_trial_curve, study_figures
from study.objective import best_feasible
from study.pruning import PRUNERS
from study.records import DEFAULT_ARTIFACT_DIR, artifact_store
from study.report import write_report
from study.runner import (
    MAX_SKIPS_IN_A_ROW,
    describe,
    finished_count,
    prepare,
    prepare_features,
    prepare_stored,
    run,
    study_dataset,
)
from study.sampler import SAMPLERS
from study.settings import StudySettings, replayed
from study.storage import DEFAULT_STORAGE, load_existing_study, make_storage, quiet_optuna

DEFAULTS = StudySettings()


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        default=SYNTHETIC,
        metavar="synthetic|download|PATH",
        help="clips to use: 'synthetic' = the embedded dataset spoken by espeak-ng, made "
        "locally on first use (default, no network); 'download' = the official Speech "
        "Commands v0.01 archive (1.4 GB, checksum-verified, resumable); or PATH = a "
        "folder in the Speech Commands layout (v0.01 or v0.02)",
    )
    parser.add_argument(
        "--num-clips",
        type=int,
        default=DEFAULTS.num_clips,
        help="clips in the embedded dataset (--data synthetic only); 64721 with "
        "--num-speakers 1881 is the size of Speech Commands v0.01 (default: %(default)s)",
    )
    parser.add_argument(
        "--num-speakers",
        type=int,
        default=DEFAULTS.num_speakers,
        help="speakers (voice, pitch and rate) in the embedded dataset, split by speaker into "
        "training, validation and testing (--data synthetic only; default: %(default)s)",
    )
    parser.add_argument(
        "--keyword",
        default=KEYWORD,
        help="word folder whose clips are positives (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the embedded dataset, augmentation, training and sampler "
        "(default: %(default)s)",
    )
    _add_cache_arguments(parser, models=False)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _add_cache_arguments(parser: argparse.ArgumentParser, models: bool) -> None:
    """This machine's cache folders: never taken from a stored study or an export."""
    parser.add_argument(
        "--data-dir",
        default=DEFAULTS.data_dir,
        help="where generated and downloaded datasets are kept (default: %(default)s)",
    )
    parser.add_argument(
        "--feature-dir",
        default=DEFAULTS.feature_dir,
        help="where the log-mel feature cache is kept (default: %(default)s)",
    )
    if models:
        _add_model_dir_argument(parser)


def _add_storage_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help="SQLAlchemy URL of the study database; SQLite for one machine, "
        "postgresql+psycopg://user:pass@host/db for many (default: %(default)s)",
    )
    parser.add_argument(
        "--study-name",
        default=None,
        help="study to create or continue (default: kws-<data>-<keyword>-seed<seed>)",
    )


def _add_artifact_dir_argument(parser: argparse.ArgumentParser, purpose: str) -> None:
    parser.add_argument(
        "--artifact-dir", default=DEFAULT_ARTIFACT_DIR, help=f"{purpose} (default: %(default)s)"
    )


def _add_model_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-dir",
        default=DEFAULTS.model_dir,
        help="where the reference (teacher) model is cached (default: %(default)s)",
    )


def _add_machine_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a stored study or export is retrained here: this machine's device and caches,
    never the ones it was made with."""
    parser.add_argument(
        "--device",
        default="auto",
        choices=DEVICES,
        help="'auto' = CUDA when available, else CPU (default: %(default)s)",
    )
    _add_cache_arguments(parser, models=True)


def _add_study_arguments(parser: argparse.ArgumentParser) -> None:
    _add_storage_arguments(parser)
    _add_data_arguments(parser)
    _add_model_dir_argument(parser)
    _add_artifact_dir_argument(
        parser, "where every finished trial's checkpoint is stored for the dashboard"
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=DEFAULTS.trials,
        help="trained (completed + pruned) trials the study ends with, in total (a proposal "
        "skipped untrained does not count): a rerun after an interrupt, or another process "
        "on the same storage, continues the count; the search ends sooner when "
        f"{MAX_SKIPS_IN_A_ROW} proposals in a row find no student within the floors "
        "(--min-compression, --min-speedup) that can beat its best feasible trial "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=DEFAULTS.max_epochs,
        help="epochs per trial at most; pruning and early stopping end many sooner "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=DEFAULTS.patience,
        help="stop a student after this many epochs without a better validation au_fa_fr; "
        "0 trains all --max-epochs (default: %(default)s)",
    )
    parser.add_argument(
        "--ema-decay",
        type=float,
        default=DEFAULTS.ema_decay,
        help="validate and keep a student's exponential moving average of weights, updated "
        "every step with this decay; 0 keeps the trained weights (default: %(default)s)",
    )
    parser.add_argument(
        "--freq-mask",
        type=int,
        default=DEFAULTS.freq_mask,
        help="students' SpecAugment: widest frequency mask in mel bands; 0: none (the "
        "reference keeps the course's 15) (default: %(default)s)",
    )
    parser.add_argument(
        "--time-mask",
        type=int,
        default=DEFAULTS.time_mask,
        help="students' SpecAugment: widest time mask in frames; 0: none (the reference "
        "keeps the course's 35) (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="stop starting trials after this many seconds (default: no limit)",
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=DEFAULTS.n_jobs,
        help="worker processes on this machine, sharing the CPU cores (default: %(default)s)",
    )
    parser.add_argument(
        "--device",
        default=DEFAULTS.device,
        choices=DEVICES,
        help="'auto' = CUDA when available, else CPU (default: %(default)s)",
    )
    parser.add_argument(
        "--max-au-fa-fr",
        type=float,
        default=None,
        help="the quality bar: feasible trials have validation au_fa_fr at most this "
        "(default: 1.1 x the reference model's, averaged over --reference-seeds)",
    )
    parser.add_argument(
        "--reference-seeds",
        type=int,
        default=DEFAULTS.reference_seeds,
        help="train the reference (BASE, base recipe) on this many seeds from --seed and set "
        "the bar from their mean validation au_fa_fr: one run's varies by about 20 %% with "
        "the seed; the first is the teacher (default: %(default)s)",
    )
    parser.add_argument(
        "--pruner",
        default=DEFAULTS.pruner,
        choices=sorted(PRUNERS),
        help="how weak trials are stopped early: successive-halving, median and hyperband "
        "are Optuna's, on the reported penalized score; quality-halving is successive "
        "halving (rungs at epochs 2, 6, 18 and 54) on score x min(1, bar / au_fa_fr so "
        "far)^2, and on au_fa_fr alone while no trial is feasible (default: %(default)s)",
    )
    parser.add_argument(
        "--sampler",
        default=DEFAULTS.sampler,
        choices=SAMPLERS,
        help="how trials are proposed: multivariate TPE, or uniformly at random (a baseline "
        "with the same skipping and pruning) (default: %(default)s)",
    )
    parser.add_argument(
        "--skip-hopeless",
        action=argparse.BooleanOptionalAction,
        default=DEFAULTS.skip_hopeless,
        help="propose only students whose score (known from their architecture) can beat "
        "the best feasible trial so far: others could not win even with a perfect "
        "au_fa_fr; one that gets through is skipped untrained and does not count toward "
        "--trials (default: on)",
    )
    parser.add_argument(
        "--confirm-seeds",
        type=int,
        default=DEFAULTS.confirm_seeds,
        help="a trial that meets the bar on its first seed is trained on this many seeds "
        "and judged by their mean plus its standard error, so a lucky seed cannot become "
        "the best (default: %(default)s)",
    )
    parser.add_argument(
        "--fresh-check",
        action=argparse.BooleanOptionalAction,
        default=DEFAULTS.fresh_check,
        help="a trial that meets the bar on its --confirm-seeds seeds and would become the "
        "best is trained on as many further seeds, which chose nothing, and counts only if "
        "it meets the bar there too (default: off; with the students' recipe it rejected "
        "none of 49 would-be bests on seeds 0-4)",
    )
    parser.add_argument(
        "--min-compression",
        type=float,
        default=DEFAULTS.min_compression,
        help="train only students whose compression rate C (base state-dict bytes / the "
        "student's, fp16 counted) is at least this; the study still maximizes the score "
        "0.35 (C + S) among them; 0: no floor (default: %(default)s)",
    )
    parser.add_argument(
        "--min-speedup",
        type=float,
        default=DEFAULTS.min_speedup,
        help="train only students whose speed-up S (base MACs / the student's) is at least "
        "this; 0: no floor (default: %(default)s)",
    )

    parser.add_argument(
        "--heartbeat-interval",
        type=int,
        default=DEFAULTS.heartbeat_interval,
        help="seconds between a running trial's heartbeats in the storage (default: %(default)s)",
    )
    parser.add_argument(
        "--grace-period",
        type=int,
        default=DEFAULTS.grace_period,
        help="seconds without a heartbeat after which another worker marks the trial failed "
        "(its worker died) and reruns its parameters once; must exceed the heartbeat "
        "interval (default: %(default)s)",
    )


def _data_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings of :func:`_add_data_arguments`' flags, which the study and ``prepare``
    share, so that both build the same dataset and feature cache."""
    return {
        "data": args.data,
        "num_clips": args.num_clips,
        "num_speakers": args.num_speakers,
        "keyword": args.keyword,
        "seed": args.seed,
        "data_dir": args.data_dir,
        "feature_dir": args.feature_dir,
        "progress": not args.no_progress,
    }


def _settings(args: argparse.Namespace) -> StudySettings:
    return StudySettings(
        **_data_settings(args),
        trials=args.trials,
        storage=args.storage,
        study_name=args.study_name,
        max_epochs=args.max_epochs,
        patience=args.patience,
        ema_decay=args.ema_decay,
        freq_mask=args.freq_mask,
        time_mask=args.time_mask,
        timeout=args.timeout,
        n_jobs=args.n_jobs,
        device=args.device,
        max_au_fa_fr=args.max_au_fa_fr,
        reference_seeds=args.reference_seeds,
        pruner=args.pruner,
        sampler=args.sampler,
        skip_hopeless=args.skip_hopeless,
        confirm_seeds=args.confirm_seeds,
        fresh_check=args.fresh_check,
        min_compression=args.min_compression,
        min_speedup=args.min_speedup,
        model_dir=args.model_dir,
        artifact_dir=args.artifact_dir,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
    )


def _study(args: argparse.Namespace) -> int:
    settings = _settings(args)
    start = time.perf_counter()
    try:
        study = run(settings)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished trials are saved; rerun the same command to continue",
            file=sys.stderr,
        )
        return 130
    best = best_feasible(study)
    print(
        f"study {study.study_name!r}: {finished_count(study)} trained trials in "
        f"{settings.storage}, {time.perf_counter() - start:.0f} s this run"
    )
    if best is None:
        print("no feasible trial yet (none meets the au_fa_fr bar)")
    else:
        print(f"best feasible: {describe(best)}")
        print("next: python run_study.py export  (held-out check and deployable files)")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    settings = StudySettings(**_data_settings(args))
    index = study_dataset(settings)
    print(index.summary())
    try:
        require_evaluable(index)
    except DatasetError as error:
        print(f"warning: a study would refuse this data: {error}", file=sys.stderr)
    features = prepare_features(settings, index=index)
    print(
        f"feature cache {args.feature_dir}/{features.key}.pt: "
        f"{features.num_bytes() / 2**20:.1f} MiB, {features.training_views.shape[0]} augmented "
        f"training views, {features.cutoff_views.shape[1]} cut-off words in each; "
        f"ready in {time.perf_counter() - start:.1f} s"
    )
    return 0


def _existing_study(args: argparse.Namespace) -> optuna.Study:
    """The study a read-only command works on; nothing is created in the storage."""
    default = StudySettings(storage=args.storage, seed=args.seed).name
    study = load_existing_study(args.storage, args.study_name, default)
    if not study.trials:
        raise UserError(f"study {study.study_name!r} has no trials in {args.storage}")
    return study


def _here(args: argparse.Namespace, progress: bool = False) -> StudySettings:
    """This machine's settings for retraining a stored study: device, cache folders and
    whether progress bars show."""
    return StudySettings(
        storage=getattr(args, "storage", DEFAULTS.storage),
        device=args.device,
        data_dir=args.data_dir,
        feature_dir=args.feature_dir,
        model_dir=args.model_dir,
        progress=progress,
    )


def _export(args: argparse.Namespace) -> int:
    study = _existing_study(args)
    out = Path(args.out or f"storage/exports/{study.study_name}")
    here = _here(args, progress=not args.no_progress)
    folder = export_best(study, out, here, seeds=args.seeds, confirm=args.confirm)
    export = read_export(folder)
    if not export.selection["confirmed"]:
        print(
            f"warning: none of the {len(export.selection['candidates'])} best feasible trials "
            "met the bar on average over the seeds; exporting the closest (try a larger "
            "--confirm, or more trials)",
            file=sys.stderr,
        )
    print(f"exported trial {export.study['trial_number']} to {folder}")
    print(
        f"C {export.metrics['compression_rate']:.2f}, S {export.metrics['speedup']:.2f}, "
        f"score {export.metrics['score']:.3f}"
    )
    print(held_out_summary(export.held_out))
    return 0


def _train(args: argparse.Namespace) -> int:
    export = read_export(args.config)
    here = _here(args, progress=not args.no_progress)
    settings = replayed(export.settings.to_dict(), here, export.settings.name)
    prepared = prepare(settings)
    device = resolve_device(args.device)
    result = train(
        export.model, export.training, training_data(prepared.features, prepared.reference, device)
    )
    model = CRNN(export.model)
    model.load_state_dict(result.state_dict)
    features = prepared.features
    test = evaluate_au_fa_fr(
        model, features.features["testing"], features.labels["testing"], export.training.fp16
    )
    out = Path(args.out)
    deployed = model.half() if export.training.fp16 else model
    save_atomically(deployed.state_dict(), out / WEIGHTS_FILE)
    print(
        f"validation au_fa_fr {result.best_val_au_fa_fr:.3e} (the exported model's: "
        f"{export.held_out['val_au_fa_fr'][0]:.3e}), test {test:.3e}; "
        f"weights in {out / WEIGHTS_FILE}"
    )
    return 0


STDIN_READ = 3_200  # bytes read from stdin at a time: 100 ms of 16-bit 16 kHz audio


def _stdin_chunks() -> Iterator[torch.Tensor]:
    """Raw little-endian 16-bit mono 16 kHz PCM from stdin, as float chunks in [-1, 1)."""
    stream = sys.stdin.buffer
    pending = b""
    first = True
    while block := stream.read1(STDIN_READ):  # returns what has arrived, b"" at the end
        if first and block.startswith(b"RIFF"):
            raise UserError(
                "stdin: starts with a WAV header, but --wav - reads raw 16-bit 16 kHz mono "
                "PCM (e.g. arecord -t raw -f S16_LE -r 16000 -c 1); pass a WAV file by path"
            )
        first = False
        pending += block
        usable = len(pending) - len(pending) % 2  # a sample split between reads waits
        if usable:
            samples = np.frombuffer(pending[:usable], dtype="<i2").astype(np.float32) / 32768
            pending = pending[usable:]
            yield torch.from_numpy(samples)


def _stream(args: argparse.Namespace) -> int:
    model = load_weights(args.model).to(resolve_device(args.device))
    if args.wav == "-":
        source, chunks = "stdin", _stdin_chunks()
    else:
        source, chunks = args.wav, iter([read_resampled(args.wav)])
    detector = StreamingDetector(
        model,
        window_ms=args.window_ms,
        chunk_ms=args.chunk_ms,
        threshold=args.threshold,
        smooth=args.smooth,
        refractory_ms=args.refractory_ms,
    )
    samples, windows, printed = 0, 0, 0
    for chunk in chunks:
        for begin in range(0, chunk.numel(), detector.chunk):
            windows += len(detector.push(chunk[begin : begin + detector.chunk]))
            printed = _print_detections(detector, printed, args.window_ms)
        samples += chunk.numel()
    if samples == 0:
        raise UserError(f"{source}: no audio")
    windows += len(detector.flush())
    printed = _print_detections(detector, printed, args.window_ms)
    print(
        f"{source}: {samples / SAMPLE_RATE:.2f} s of audio, {windows} windows, "
        f"{printed} detection{'s' if printed != 1 else ''} at threshold {args.threshold}"
    )
    return 0


def _print_detections(detector: StreamingDetector, printed: int, window_ms: float) -> int:
    """Print the detections made since the first ``printed``; returns the new count."""
    for detection in detector.detections[printed:]:
        start = max(0.0, detection.time_s - window_ms / 1000)
        print(
            f"keyword at {detection.time_s:.2f} s (window {start:.2f}-{detection.time_s:.2f} s)"
            f", probability {detection.probability:.3f}",
            flush=True,
        )
    return len(detector.detections)


def _dashboard(args: argparse.Namespace) -> int:
    storage = make_storage(args.storage, create=False)
    where = f"http://{args.host}:{args.port}/dashboard"
    if args.study_name is not None:
        study = load_existing_study(args.storage, args.study_name, args.study_name)
        where += f"/studies/{storage.get_study_id_from_name(study.study_name)}"
    print(f"optuna-dashboard on {where} (Ctrl-C stops it)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        optuna_dashboard.run_server(
            storage,
            host=args.host,
            port=args.port,
            artifact_store=artifact_store(args.artifact_dir),
        )
    return 0


def _report(args: argparse.Namespace) -> int:
    study = _existing_study(args)
    features = prepare_stored(study, _here(args))[1].features
    best = best_trial_curve(
        study,
        make_storage(args.storage, create=False),
        artifact_store(args.artifact_dir),
        features.features["validation"],
        features.labels["validation"],
    )
    export_dir = Path(args.export or f"storage/exports/{study.study_name}")
    export = None
    if (export_dir / "config.json").is_file():
        try:
            export = read_export(export_dir)
        except ExportError as error:  # an older export: the report goes on without it
            print(f"warning: {error}; the report leaves the held-out check out", file=sys.stderr)
    out = Path(args.out or f"storage/reports/{study.study_name}.html")
    write_report(study, study_figures(study, best), out, export)
    print(f"report of {study.study_name!r} written to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_study.py",
        description="Search the smallest, fastest keyword-spotting CRNN that meets a quality "
        "bar. Without a command, runs (or continues) the study.",
        epilog="A command's options go after it: run_study.py COMMAND --help lists them.",
    )
    _add_study_arguments(parser)
    parser.set_defaults(run=_study)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    prepare = commands.add_parser(
        "prepare",
        help="make the dataset and its feature cache, and print clips per class and split",
        description="Make the dataset (embedded by default) and build its log-mel feature cache.",
    )
    _add_data_arguments(prepare)
    prepare.set_defaults(run=_prepare)

    export = commands.add_parser(
        "export",
        help="write the best feasible trial's config, weights and held-out test check",
        description="Export the best feasible trial that holds up: retrain the --confirm best "
        "feasible trials on --seeds new seeds (after the study's --confirm-seeds and its "
        "fresh check's, so the search's choice did not flatter them) until one's mean "
        "validation au_fa_fr plus its standard error meets the bar, "
        "evaluate that one on the test split, write config.json, model.pt and model.ts.pt "
        "(TorchScript, runs with torch alone).",
    )
    _add_storage_arguments(export)
    export.add_argument("--seed", type=int, default=0, help="the study's --seed (default: 0)")
    export.add_argument(
        "--out", default=None, help="output folder (default: storage/exports/<study name>)"
    )
    export.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="seeds each candidate is retrained on; their mean validation au_fa_fr plus its "
        "standard error must meet the bar, and the exported one's test au_fa_fr is reported "
        "(default: %(default)s)",
    )
    export.add_argument(
        "--confirm",
        type=int,
        default=5,
        help="best feasible trials retrained, best first, until one still meets the bar over "
        "--seeds seeds the study did not train it on (default: %(default)s)",
    )
    _add_machine_arguments(export)
    export.add_argument("--no-progress", action="store_true", help="hide progress bars")
    export.set_defaults(run=_export)

    dashboard = commands.add_parser(
        "dashboard",
        help="browse studies in optuna-dashboard: trials, curves, notes, checkpoints",
        description="Start optuna-dashboard on the study storage, with the trial checkpoints "
        "of --artifact-dir. The same as: optuna-dashboard URL --artifact-dir DIR.",
    )
    _add_storage_arguments(dashboard)
    dashboard.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 exposes the dashboard (and the checkpoints) to "
        "the network (default: %(default)s, this machine only)",
    )
    dashboard.add_argument("--port", type=int, default=8080, help="default: %(default)s")
    _add_artifact_dir_argument(dashboard, "the trials' checkpoints")
    dashboard.set_defaults(run=_dashboard)

    report = commands.add_parser(
        "report",
        help="write one self-contained HTML report of a study",
        description="Write the study's figures, its best trials and the export's held-out "
        "check into one HTML file that opens offline (plotly's JavaScript embedded).",
    )
    _add_storage_arguments(report)
    report.add_argument("--seed", type=int, default=0, help="the study's --seed (default: 0)")
    report.add_argument(
        "--out", default=None, help="HTML file (default: storage/reports/<study name>.html)"
    )
    report.add_argument(
        "--export",
        default=None,
        help="export folder whose held-out check is shown (default: "
        "storage/exports/<study name>, when it exists)",
    )
    _add_artifact_dir_argument(report, "the trials' checkpoints, for the best trial's FA/FR curve")
    _add_machine_arguments(report)
    report.set_defaults(run=_report)

    train = commands.add_parser(
        "train",
        help="reproduce a model from an exported config.json",
        description="Train the architecture and recipe of an exported config.json on its data.",
    )
    train.add_argument("--config", required=True, help="exported config.json (or its folder)")
    train.add_argument(
        "--out", default="storage/trained", help="output folder (default: %(default)s)"
    )
    _add_machine_arguments(train)
    train.add_argument("--no-progress", action="store_true", help="hide progress bars")
    train.set_defaults(run=_train)

    stream = commands.add_parser(
        "stream",
        help="detect the keyword in a WAV file or a raw PCM stream on stdin",
        description="Score the last --window-ms of audio every --chunk-ms with an exported "
        "model, exactly as the model scores that window on its own, and print each "
        "detection with its time (the end of the window that fired) and probability.",
    )
    stream.add_argument(
        "--model", required=True, help="exported model folder (config.json and model.pt)"
    )
    stream.add_argument(
        "--wav",
        required=True,
        help="audio file (any rate or channel count: resampled to 16 kHz, mixed to mono), "
        "or '-' for raw 16-bit little-endian 16 kHz mono PCM on stdin",
    )
    stream.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="smoothed keyword probability that makes a detection (default: %(default)s)",
    )
    stream.add_argument(
        "--chunk-ms",
        type=float,
        default=100.0,
        help="a window is scored every this many ms of audio (default: %(default)s)",
    )
    stream.add_argument(
        "--window-ms",
        type=float,
        default=1000.0,
        help="audio scored each time, ms; the models are trained on 1 s (default: %(default)s)",
    )
    stream.add_argument(
        "--smooth",
        type=int,
        default=1,
        help="probabilities averaged (the last N windows) before the threshold "
        "(default: %(default)s)",
    )
    stream.add_argument(
        "--refractory-ms",
        type=float,
        default=None,
        help="no new detection this soon after one, ms, so one utterance gives one "
        "(default: --window-ms)",
    )
    stream.add_argument(
        "--device",
        default="cpu",
        choices=DEVICES,
        help="where the model runs; one window of a small CRNN is quickest on the CPU "
        "(default: %(default)s)",
    )
    stream.set_defaults(run=_stream)
    return parser


def _options_before_a_command(argv: Sequence[str], command: str | None) -> str | None:
    """Why the command line cannot stand when options come before its command, or None.
    They are the study run's: argparse gives the command its own defaults for those it
    shares (``--seed 1 export`` would export seed 0's study) and ignores the others."""
    if command is None or argv[0] == command:  # no positional precedes the command
        return None
    return (
        f"options go after the command: python run_study.py {command} [options] (those "
        f"before it would be ignored; 'python run_study.py {command} --help' lists its options)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    misplaced = _options_before_a_command(argv, args.command)
    if misplaced:
        print(f"error: {misplaced}", file=sys.stderr)
        return 2
    quiet_optuna()
    try:
        return args.run(args)
    except (UserError, OSError) as error:  # what the user can fix; anything else is a bug
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
