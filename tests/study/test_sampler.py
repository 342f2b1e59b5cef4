from __future__ import annotations

import io

import optuna
import torch

from kws.compression import to_fp16
from kws.model import BASE, CRNN
from study.attributes import AU_FA_FR, BAR
from study.objective import Floors
from study.sampler import make_sampler, proposal_compression, proposal_score
from study.search_space import configs_from_params, distributions, suggest


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


def _state_dict_bytes(params: dict) -> int:
    """What ``torch.save`` writes for the deployed student, measured here, not by the code."""
    config, recipe = configs_from_params(params)
    model = CRNN(config)
    buffer = io.BytesIO()
    torch.save((to_fp16(model) if recipe.fp16 else model).state_dict(), buffer)
    return buffer.tell()


def test_with_floors_every_proposal_reaches_both() -> None:
    base = io.BytesIO()
    torch.save(CRNN(BASE).state_dict(), base)
    floors = Floors(min_compression=15.0, min_speedup=15.0)
    unfloored = _proposals(optuna.create_study(sampler=make_sampler(5)), 12)
    floored = _proposals(optuna.create_study(sampler=make_sampler(5, floors=floors)), 12)
    # Without floors most students of this space are below them (not a vacuous test).
    below = [p for p in unfloored if base.tell() / _state_dict_bytes(p) < 15]
    assert len(below) >= 6
    for params in floored:  # 12 > 10 start-up trials: TPE proper is covered too
        assert base.tell() / _state_dict_bytes(params) >= 15
        assert proposal_compression(params).speedup >= 15
