"""Peak RSS of synthesizing the embedded dataset: this tree's kws/synth.py against another
revision's, each in a fresh process, and whether their files are byte-identical.

    python benchmarks/synth_peak.py --num-clips 20000 --num-speakers 600 --rev 37dc163

``--rev 37dc163`` is the last revision that resampled every word in one batch.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.util
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[1]


def _module(source: Path | None) -> ModuleType:
    if source is None:
        import kws.synth

        return kws.synth
    spec = importlib.util.spec_from_file_location("synth_at_rev", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["synth_at_rev"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _child(args: argparse.Namespace) -> None:
    synth = _module(args.source)
    config = synth.EmbeddedDatasetConfig(num_clips=args.num_clips, num_speakers=args.num_speakers)
    synth.generate_embedded_dataset(args.root, config, progress=False)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9)  # KiB on Linux


def _identical(left: Path, right: Path) -> bool:
    files = sorted(p.relative_to(left) for p in left.rglob("*") if p.is_file())
    others = sorted(p.relative_to(right) for p in right.rglob("*") if p.is_file())
    return files == others and all(filecmp.cmp(left / f, right / f, shallow=False) for f in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-clips", type=int, default=20_000)
    parser.add_argument("--num-speakers", type=int, default=600)
    parser.add_argument("--rev", default="37dc163", help="the git revision to compare with")
    parser.add_argument("--out", type=Path, default=Path("/tmp/kws-synth-peak"))
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)  # child's entry
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.root is not None:
        _child(args)
        return
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    old_source = args.out / "synth_at_rev.py"
    old_source.write_bytes(
        subprocess.run(
            ["git", "show", f"{args.rev}:kws/synth.py"], cwd=REPO_ROOT, check=True,
            capture_output=True,
        ).stdout
    )  # fmt: skip
    size = ["--num-clips", str(args.num_clips), "--num-speakers", str(args.num_speakers)]
    peaks = {}
    for name, source in ((args.rev, ["--source", str(old_source)]), ("this tree", [])):
        root = args.out / ("old" if source else "new")
        command = [sys.executable, __file__, *size, "--root", str(root), *source]
        peaks[name] = float(subprocess.run(command, check=True, capture_output=True,
                                           text=True).stdout)  # fmt: skip
    for name, peak in peaks.items():
        print(f"{name}: peak RSS {peak:.2f} GB synthesizing {args.num_clips} clips")
    same = _identical(args.out / "old", args.out / "new")
    print("files byte-identical" if same else "files DIFFER")


if __name__ == "__main__":
    main()
