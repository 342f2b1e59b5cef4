"""How many random draws the speed-up floor rejects, and what checking it first saves.

    python benchmarks/sampler_draws.py [--draws 2000] [--min-speedup 15] [--seed 0]

Draws students uniformly from the search space (Optuna's RandomSampler, as the sampler's
fallback draws them) and prints the share below ``--min-speedup`` and the seconds per
draw of the two checks side by side: the speed-up from MACs alone
(:func:`kws.compression.architecture_speedup`) against the full measurement the sampler
otherwise makes (the student built, and its state dict saved, for its size). No training.
"""

from __future__ import annotations

import argparse
import time

import optuna

from kws.compression import architecture_speedup
from study.sampler import proposal_compression
from study.search_space import distributions, model_from_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=2000, help="random students drawn")
    parser.add_argument("--min-speedup", type=float, default=15.0, help="the S floor")
    parser.add_argument("--seed", type=int, default=0, help="the RandomSampler's seed")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=args.seed))
    space = distributions()
    draws = [study.ask(space).params for _ in range(args.draws)]

    start = time.perf_counter()
    speedups = [architecture_speedup(model_from_params(params)) for params in draws]
    from_macs = (time.perf_counter() - start) / len(draws)
    start = time.perf_counter()
    measured = [proposal_compression(params).speedup for params in draws]
    built = (time.perf_counter() - start) / len(draws)

    assert speedups == measured, "the two checks disagree on a student's speed-up"
    below = sum(speedup < args.min_speedup for speedup in speedups)
    print(f"draws below S {args.min_speedup:g}: {below} of {len(draws)} ({below / len(draws):.1%})")
    print(f"per draw: from MACs {from_macs * 1e3:.3f} ms, model built {built * 1e3:.3f} ms")
    print(f"ratio: {built / from_macs:.0f}x")


if __name__ == "__main__":
    main()
