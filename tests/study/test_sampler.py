from __future__ import annotations

import optuna

from study.attributes import AU_FA_FR, BAR
from study.sampler import make_sampler, proposal_score
from study.search_space import distributions, suggest


def _proposals(study: optuna.Study, count: int) -> list[dict]:
    proposals = []
    for _ in range(count):
        trial = study.ask()
        suggest(trial)
        trial.set_user_attr(AU_FA_FR, 1e-3)  # what the constraint reads
        trial.set_user_attr(BAR, 2e-3)
        proposals.append(trial.params)
        study.tell(trial, float(len(proposals)))
    return proposals


def test_two_workers_with_the_same_seed_do_not_repeat_each_other() -> None:
    """Two samplers (two worker processes) on one storage, asking in turn."""
    storage = optuna.storages.InMemoryStorage()
    first = optuna.create_study(storage=storage, sampler=make_sampler(0), study_name="s")
    second = optuna.load_study(storage=storage, sampler=make_sampler(0), study_name="s")
    seen = []
    for _ in range(6):
        for study in (first, second):
            seen.extend(_proposals(study, 1))
    assert len({tuple(sorted(p.items())) for p in seen}) == len(seen)


def test_same_seed_same_history_same_proposals() -> None:
    runs = [_proposals(optuna.create_study(sampler=make_sampler(7)), 14) for _ in range(2)]
    assert runs[0] == runs[1]  # 14 > 10 start-up trials: TPE proper is covered too
    other = _proposals(optuna.create_study(sampler=make_sampler(8)), 3)
    assert other != runs[0][:3]


def test_with_beat_the_best_every_proposal_can_beat_the_best_feasible_value() -> None:
    # Every trial meets the bar with a quarter of its score as its value: the best feasible
    # value climbs, and leaves room above it, start-up and TPE trials alike.
    study = optuna.create_study(direction="maximize", sampler=make_sampler(3, beat_the_best=True))
    for _ in range(16):
        best = study.best_value if study.best_trials else None
        trial = study.ask()
        suggest(trial)
        score = proposal_score(trial.params)
        assert best is None or score > best
        # Every parameter came from the joint proposal, none from an independent draw.
        assert trial.relative_params.keys() == distributions().keys()
        trial.set_user_attr(AU_FA_FR, 1e-3)
        trial.set_user_attr(BAR, 2e-3)
        study.tell(trial, score / 4)
    assert study.best_value > 3  # it climbed (a random student scores about 1 to 5)
