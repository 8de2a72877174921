"""The ask-and-tell loop of `ssnas tune`: each trial is the recipe with Optuna's sampled values, submitted
to the runs folder's queue like `ssnas run --detach`, followed in the registry, and told back to Optuna.

Up to `[tune] parallel` trials are in flight (the folder's max-parallel still bounds the workers). While a
trial's last stage runs, its dev metric after each epoch is reported to Optuna; when the pruner says so,
the trial's runs are tagged `pruned` and killed the usual way (SIGTERM: a checkpoint, then `killed`) and
the trial is told PRUNED. The study lives in an Optuna journal file beside the registry, so running the
tuner again continues it: trials already told are kept, trials still in flight are followed again (and
submitted, if the tuner stopped between asking and submitting), and new ones are asked up to the budget.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.study import StudyDirection
from optuna.trial import TrialState

from ssnas.errors import SsnasError
from ssnas.recipe import Recipe, load_recipe
from ssnas.recipe.render import toml_value
from ssnas.recipe.tuning import TuneSection
from ssnas.registry import Registry
from ssnas.run_record import ACTIVE, Run
from ssnas.runs import launching
from ssnas.runs.launching import LaunchOptions
from ssnas.runs.service import RunService
from ssnas.scheduling.daemon import ensure_scheduler
from ssnas.tune import sampling
from ssnas.tune.files import StudySpec, study_file, study_lock, study_name
from ssnas.tune.trials import PRUNED_TAG, Outcome, dev_curve, outcome, runs_by_trial, trial_tags

SCHEDULER_CHECK_S = 2.0  # how often the tuner makes sure the folder's scheduler runs (as a foreground run does)
SUBMIT_FAILURES = 3  # trials in a row that cannot be submitted end the study session: the cause is not the values


@dataclass(frozen=True)
class TuneRequest:
    """What `ssnas tune` was asked: the recipe, its overrides, the study (default: the recipe's run name), the
    budget (default: `[tune] trials`), how the folder's workers run, and how often to look at the registry."""

    recipe: str
    overrides: tuple[str, ...] = ()
    study: str | None = None
    trials: int | None = None
    launch: LaunchOptions = field(default_factory=LaunchOptions)
    poll_s: float = 1.0


def tune(runs_dir: Path, request: TuneRequest, on_event: Callable[[str], None] = lambda line: None, *,
         pruner: optuna.pruners.BasePruner | None = None) -> dict[str, int]:
    """Run the study to its budget (or continue it); `on_event` gets one line per trial event. `pruner` replaces
    the recipe's (tests force one). Returns the study's trials by state as Optuna holds them (a trial that could
    not be submitted has no runs, so it is counted only here)."""
    recipe = load_recipe(request.recipe, request.overrides)
    if recipe.tune is None:
        raise SsnasError(f"{request.recipe}: no [tune] table, nothing to tune (docs/tune.md)")
    name = study_name(recipe, request.study)
    spec = StudySpec(name, os.path.abspath(request.recipe), tuple(request.overrides), recipe.tune.objective,
                     recipe.tune.direction, tuple(recipe.tune.space))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with study_lock(runs_dir, name):
        earlier = StudySpec.load(runs_dir, name)
        if earlier is not None and (earlier.objective, earlier.direction) != (spec.objective, spec.direction):
            raise SsnasError(f"study {name}: it optimizes {earlier.objective} ({earlier.direction}), this recipe "
                             f"{spec.objective} ({spec.direction}); name another study (--study)")
        spec.save(runs_dir)
        storage = JournalStorage(JournalFileBackend(str(study_file(runs_dir, name, ".journal"))))
        direction = StudyDirection.MAXIMIZE if recipe.tune.direction == "maximize" else StudyDirection.MINIMIZE
        study = optuna.create_study(storage=storage, study_name=name, direction=direction, load_if_exists=True,
                                    pruner=pruner or sampling.pruner(recipe.tune))
        target = request.trials or recipe.tune.trials
        study.sampler = sampling.sampler(recipe.tune, recipe.run.seed, len(study.trials), target)
        _Tuner(Path(runs_dir), study, recipe, request, target, on_event).run()
        return _states(study)


@dataclass
class _Flight:
    """A trial in flight, and the epochs of its dev curve already reported."""

    trial: optuna.Trial
    reported: set[int] = field(default_factory=set)


class _Tuner:
    def __init__(self, runs_dir: Path, study: optuna.Study, recipe: Recipe, request: TuneRequest, target: int,
                 on_event: Callable[[str], None]) -> None:
        assert recipe.tune is not None
        self.runs_dir, self.study, self.recipe, self.request = runs_dir, study, recipe, request
        self.tune: TuneSection = recipe.tune
        self.target = target
        self.say = on_event
        self.service = RunService(runs_dir)
        self.distributions = sampling.distributions(recipe.tune)
        self.flights: dict[int, _Flight] = {}
        self.submit_failures = 0

    def run(self) -> None:
        try:
            self._adopt()
            checked = time.monotonic()
            while True:
                self._fill()
                if not self.flights:
                    return
                time.sleep(self.request.poll_s)
                self._poll()
                if time.monotonic() - checked >= SCHEDULER_CHECK_S:
                    ensure_scheduler(self.runs_dir)
                    checked = time.monotonic()
        finally:
            self.service.close()

    # -- trials in, trials out

    def _adopt(self) -> None:
        """A continued study: follow the trials an earlier tuner left in flight (submit those it never did)."""
        waiting = [frozen for frozen in self.study.get_trials(deepcopy=False) if frozen.state == TrialState.RUNNING]
        if not waiting:
            return
        by_trial = runs_by_trial(self.service.reader(), self.study.study_name) if self.service.has_registry() else {}
        for frozen in waiting:
            # A running trial of the storage as a live Trial (report, should_prune): Optuna has no public call
            # for it, and its Trial is built from the storage's trial id exactly so by `Study.ask`.
            flight = _Flight(optuna.Trial(self.study, frozen._trial_id), set(frozen.intermediate_values))
            if by_trial.get(frozen.number):
                self.flights[frozen.number] = flight
                self.say(f"trial {frozen.number}: in flight from an earlier session, followed again")
            else:
                self._submit(flight)

    def _fill(self) -> None:
        while len(self.flights) < self.tune.parallel and len(self.study.trials) < self.target:
            self._submit(_Flight(self.study.ask(self.distributions)))

    def _submit(self, flight: _Flight) -> None:
        trial = flight.trial
        tags = [*self.recipe.run.tags, *trial_tags(self.study.study_name, trial.number)]
        overrides = [*self.request.overrides, *sampling.trial_overrides(trial.params), f"run.tags={toml_value(tags)}"]
        try:
            launched = launching.submit(self.runs_dir, self.request.recipe, overrides, self.request.launch)
        except SsnasError as error:
            self._end(flight, Outcome("failed", reason=f"not submitted: {error}"))
            self.submit_failures += 1
            if self.submit_failures >= SUBMIT_FAILURES:
                raise SsnasError(f"study {self.study.study_name}: {SUBMIT_FAILURES} trials in a row could not be "
                                 f"submitted; the last: {error}") from None
            return
        self.submit_failures = 0
        self.flights[trial.number] = flight
        self.say(f"trial {trial.number}: {_params_text(trial.params)}: group {launched.group_id}, "
                 f"{len(launched.run_ids)} run(s) queued")

    def _poll(self) -> None:
        reader = self.service.reader()
        by_trial = runs_by_trial(reader, self.study.study_name)
        for number, flight in list(self.flights.items()):
            runs = by_trial.get(number, [])
            result = outcome(reader, runs, self.tune.metric)
            if result.state == "running":
                self._report(reader, flight, runs)
            elif result.state == "pruned":
                self._prune(flight, runs)
            else:
                if result.state == "complete":
                    self._report(reader, flight, runs, may_prune=False)
                self._end(flight, result)

    def _report(self, reader: Registry, flight: _Flight, runs: Sequence[Run], may_prune: bool = True) -> None:
        """Report the dev curve's new epochs; prune when the pruner says so after one of them."""
        new = False
        for epoch, value in dev_curve(reader, runs, self.tune.metric).items():
            if epoch not in flight.reported:
                flight.trial.report(value, epoch)
                flight.reported.add(epoch)
                new = True
        if new and may_prune and flight.trial.should_prune():
            self._prune(flight, runs)

    def _prune(self, flight: _Flight, runs: Sequence[Run]) -> None:
        """Tag the trial's unfinished runs `pruned` (first: a tuner stopped right after still counts them
        pruned), stop them through the normal kill path, and tell Optuna."""
        active = [run.id for run in runs if run.status in ACTIVE]
        for run_id in active:
            self.service.tag(run_id, add=[PRUNED_TAG])
        if active:
            self.service.kill(active)
        epochs = sorted(flight.reported)
        self._end(flight, Outcome("pruned", reason=f"after epoch {epochs[-1]}" if epochs else None))

    def _end(self, flight: _Flight, result: Outcome) -> None:
        trial = flight.trial
        self.flights.pop(trial.number, None)
        if result.state == "complete":
            self.study.tell(trial, result.value, skip_if_finished=True)
            best = self.study.best_trial
            self.say(f"trial {trial.number}: complete, {self.tune.objective} {result.value:.4f} "
                     f"(best: trial {best.number}, {best.value:.4f})")
            return
        if result.reason:
            trial.set_user_attr("reason", result.reason)
        state = TrialState.PRUNED if result.state == "pruned" else TrialState.FAIL
        self.study.tell(trial, state=state, skip_if_finished=True)
        self.say(f"trial {trial.number}: {result.state}" + (f" ({result.reason})" if result.reason else ""))


def _params_text(params: dict[str, object]) -> str:
    return ", ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                     for key, value in params.items())


def _states(study: optuna.Study) -> dict[str, int]:
    states: dict[str, int] = {}
    for frozen in study.get_trials(deepcopy=False):
        states[frozen.state.name.lower()] = states.get(frozen.state.name.lower(), 0) + 1
    return states
