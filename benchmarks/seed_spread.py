"""How often a student's first seed flatters it: read from finished studies, no training.

    python benchmarks/seed_spread.py sqlite:///PATH:NAME [sqlite:///PATH:NAME ...]

Each argument is a storage URL and a study name joined by ``:`` (the last one). Among the
students (score above BASE's) that met the bar on their first seed and so were trained on
their confirmation seeds, prints how many missed the bar on the mean (a lucky first seed
the study did not let win), and the spread of au_fa_fr over their seeds (population
standard deviation relative to the mean).
"""

from __future__ import annotations

import argparse
import statistics

import optuna

from study.attributes import AU_FA_FR_SEEDS, BAR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="+", metavar="URL:NAME")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    spreads, lucky = [], 0
    for spec in args.studies:
        url, name = spec.rsplit(":", 1)
        for trial in optuna.load_study(study_name=name, storage=url).trials:
            seeds = trial.user_attrs.get(AU_FA_FR_SEEDS) or []
            if len(seeds) > 1 and trial.user_attrs["score"] > 1:
                mean = statistics.fmean(seeds)
                spreads.append(statistics.pstdev(seeds) / mean)
                lucky += mean > trial.user_attrs[BAR]
    print(f"{len(spreads)} students met the bar on their first seed; {lucky} missed it on the mean")
    print(
        f"spread over their seeds (std / mean): median {statistics.median(spreads):.2f}, "
        f"largest {max(spreads):.2f}"
    )


if __name__ == "__main__":
    main()
