from __future__ import annotations

import optuna
import pytest

from kws.model import BASE
from study.attributes import AU_FA_FR, BAR
from study.objective import constraint, deployed_compression, penalized_score


def test_penalty_is_one_when_the_bar_is_met_and_proportional_beyond() -> None:
    assert penalized_score(5.0, au_fa_fr=1e-3, bar=2e-3) == 5.0
    assert penalized_score(5.0, au_fa_fr=2e-3, bar=2e-3) == 5.0
    assert penalized_score(5.0, au_fa_fr=4e-3, bar=2e-3) == pytest.approx(2.5)


def test_fp16_doubles_the_compression_roughly_and_leaves_macs() -> None:
    fp32, fp16 = deployed_compression(BASE, False), deployed_compression(BASE, True)
    assert fp32.compression_rate == pytest.approx(1.0)
    assert 1.85 < fp16.compression_rate < 2.0
    assert fp16.macs == fp32.macs == 904_608


def test_constraint_reads_the_recorded_au_fa_fr_and_bar() -> None:
    trial = optuna.trial.create_trial(
        value=1.0, user_attrs={AU_FA_FR: 3e-3, BAR: 2e-3}, params={}, distributions={}
    )
    assert constraint(trial) == pytest.approx((1e-3,))
