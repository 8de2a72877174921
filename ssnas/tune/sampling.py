"""The `[tune]` table in Optuna's terms: each key's distribution, the sampler and the pruner, and a trial's
sampled values as the `--set` overrides it is submitted with. Imports optuna: only the tuner loads it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from ssnas.recipe import LEAVES
from ssnas.recipe.render import toml_value
from ssnas.recipe.tuning import Space, TuneSection

TPE_STARTUP_MAX = 10  # Optuna's default number of random trials before TPE models the results


def distributions(tune: TuneSection) -> dict[str, BaseDistribution]:
    """Each tuned key's distribution: choices, or a range of its key's type (an int key samples ints)."""
    return {key: _distribution(key, space) for key, space in tune.space.items()}


def _distribution(key: str, space: Space) -> BaseDistribution:
    if space.choices:
        return CategoricalDistribution(space.choices)
    assert space.low is not None and space.high is not None
    if LEAVES[key].hint is int:
        return IntDistribution(int(space.low), int(space.high), log=space.log, step=int(space.step or 1))
    return FloatDistribution(float(space.low), float(space.high), log=space.log, step=space.step)


def sampler(tune: TuneSection, seed: int, trials_before: int, target: int) -> optuna.samplers.BaseSampler:
    """The study's sampler, seeded from the recipe's run.seed and the trials already asked, so that a resumed
    study draws new points instead of repeating its first ones. TPE models the results after a third of the
    budget (at least 2, at most Optuna's 10) was drawn at random, and lies about pending trials so that
    parallel ones spread out."""
    state = int(np.random.SeedSequence([seed, trials_before]).generate_state(1)[0])
    if tune.sampler == "random":
        return optuna.samplers.RandomSampler(seed=state)
    startup = min(TPE_STARTUP_MAX, max(2, target // 3))
    return optuna.samplers.TPESampler(seed=state, n_startup_trials=startup, constant_liar=True)


def pruner(tune: TuneSection) -> optuna.pruners.BasePruner:
    """`median`: Optuna's MedianPruner with its defaults: once five trials have completed, a trial stops when its
    best dev value so far is worse than the median of the completed trials' at the same epoch."""
    return optuna.pruners.MedianPruner() if tune.pruner == "median" else optuna.pruners.NopPruner()


def trial_overrides(params: Mapping[str, Any]) -> list[str]:
    """`KEY=VALUE` overrides for a trial's sampled values (VALUE in TOML, as `--set` reads it)."""
    return [f"{key}={toml_value(value)}" for key, value in params.items()]
