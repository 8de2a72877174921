"""`ssnas tune`: the `[tune]` table's checks, and real studies on the tiny synthetic set (docs/tune.md)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ssnas.errors import RecipeError
from ssnas.recipe import format_recipe, load_recipe
from ssnas.registry import Registry
from tests.e2e import tiny_recipe

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "recipes" / "base.toml"


def write(folder: Path, body: str, name: str = "t.toml") -> Path:
    path = folder / name
    path.write_text(f'extends = "{BASE}"\n\n[run]\nstages = ["search", "finetune"]\n\n{body}\n')
    return path


SPACE = '[tune.space]\n"search.arch_lr" = { low = 1e-4, high = 1e-2, log = true }\n'


@pytest.mark.parametrize("body, message", [
    ('[tune.space]\n"search.arch_l" = { low = 1e-4, high = 1e-2 }',
     "t.toml: tune.space.search.arch_l: unknown key (did you mean search.arch_lr?)"),
    ('[tune]\ntrial = 3\n' + SPACE, "t.toml: tune.trial: unknown key (did you mean trials?)"),
    ('[tune.space]\n"search.arch_lr" = { low = 1e-2, high = 1e-4 }',
     "t.toml: tune.space.search.arch_lr: low 0.01 must be below high 0.0001"),
    ('[tune.space]\n"search.arch_lr" = { low = -1.0, high = 1e-2 }',
     "t.toml: tune.space.search.arch_lr: low: -1.0 is out of range (> 0)"),
    ('[tune.space]\n"search.arch_lr" = { low = 0.0, high = 1e-2, log = true }',
     "t.toml: tune.space.search.arch_lr.low: 0.0: a log scale needs low > 0"),
    ('[tune.space]\n"search.tau_min" = { low = 0.1, high = 20.0 }',
     "t.toml: tune.space.search.tau_min: high: 20.0 is above search.tau_max (10.0)"),
    ('[tune.space]\n"space.cells" = { low = 1, high = 3.5 }',
     "t.toml: tune.space.space.cells.high: expected an integer, got 3.5"),
    ('[tune.space]\n"views.policy" = { choices = ["cross_modal", "mixed"] }',
     "t.toml: tune.space.views.policy: choices[1]: 'mixed' is not one of cross_modal, instance"),
    ('[tune.space]\n"views.policy" = { low = 1, high = 2 }',
     "t.toml: tune.space.views.policy: takes a string: give choices = [...], not a range"),
    ('[tune.space]\n"run.stages" = { choices = [["search"]] }',
     "t.toml: tune.space.run.stages: cannot be tuned (the tuner names, tags and starts each trial's runs)"),
    ('[sweep]\nlabel_ratio = [0.1, 1.0]\n\n[tune.space]\n"data.label_ratio" = { low = 0.1, high = 1.0 }',
     "t.toml: tune.space.data.label_ratio: also swept (sweep.data.label_ratio): a trial takes one value of it"),
    ('[arms.fast]\n"search.arch_lr" = 0.1\n\n' + SPACE,
     "t.toml: tune.space.search.arch_lr: also set by arms.fast: the arm would override the trial's value"),
    ('[tune]\nobjective = "metric.test.f1_weighted"\n' + SPACE,
     "t.toml: tune.objective: 'metric.test.f1_weighted': a study chooses on the dev split only (metric.dev.KEY); "
     "a test score it chose on would be optimistic"),
    ('[tune]\ndirection = "minimize"\n' + SPACE,
     "t.toml: tune.direction: 'minimize', but metric.dev.f1_weighted is better higher (maximize)"),
    ('[tune]\nparallel = 2\n', "t.toml: tune.space: needs at least one key to tune ([tune.space])"),
    ('[arms.short]\n"run.stages" = ["search", "pretrain"]\n\n' + SPACE,
     "t.toml: tune.objective: arms.short: the chain ends with pretrain, which logs epoch_loss; "
     "metric.dev.f1_weighted needs a chain ending with finetune"),
])
def test_a_bad_tune_table_is_one_line_naming_file_and_key(tmp_path, monkeypatch, body, message):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, body)
    with pytest.raises(RecipeError) as error:
        load_recipe("t.toml")
    assert str(error.value) == message


def test_the_tune_table_is_shown_and_reloads_but_no_run_stores_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, '[tune]\ntrials = 4\n[tune.space]\nsearch.temperature = { low = 0.05, high = 1.0 }\n'
                    '"views.policy" = { choices = ["cross_modal", "instance"] }')
    recipe = load_recipe("t.toml")
    assert recipe.tune is not None and recipe.tune.trials == 4 and recipe.tune.direction == "maximize"
    assert set(recipe.tune.space) == {"search.temperature", "views.policy"}  # nested and quoted keys alike
    assert "tune" not in recipe.to_dict()  # `ssnas run` runs the recipe's own values
    (tmp_path / "shown.toml").write_text(format_recipe(recipe))
    assert load_recipe("shown.toml").tune == recipe.tune


def test_sampled_values_go_through_set_exactly(tmp_path, monkeypatch):
    from ssnas.tune.sampling import trial_overrides

    monkeypatch.chdir(tmp_path)
    write(tmp_path, "")
    params = {"search.arch_lr": 0.00012345678901234567, "views.policy": "instance", "space.cells": 3,
              "data.standardize": False}
    recipe = load_recipe("t.toml", trial_overrides(params))
    assert (recipe.search["arch_lr"], recipe.views["policy"], recipe.space["cells"], recipe.data.standardize) == \
        tuple(params.values())


def test_help_imports_neither_optuna_nor_torch():
    code = ("import sys\nfrom ssnas.cli import main\n"
            "for argv in (['--help'], ['tune', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print([m for m in ('optuna', 'torch') if m in sys.modules], file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "tune" in done.stdout and done.stderr.strip() == "[]"


# -- a study's trials as the registry records them (no workers: rows written here) ------------------------


@pytest.fixture
def recorded_study(tmp_path, monkeypatch):
    """A registry holding study `s`: trial 0 complete, trial 1 pruned while fine-tuning, trial 2 failed."""
    from ssnas.registry import NewRun, this_host
    from ssnas.tune.files import StudySpec

    monkeypatch.chdir(tmp_path)
    config = load_recipe(write(tmp_path, "")).to_dict()
    runs = tmp_path / "runs"
    registry = Registry(runs / "registry.db")

    def trial(number: int, arch_lr: float, ends: dict[str, tuple[str, str | None]]) -> list[str]:
        d = {**config, "search": {**config["search"], "arch_lr": arch_lr}}
        tags = ("study:s", f"trial:{number}", *(("pruned",) if ends["finetune"][0] == "killed" else ()))
        ids = registry.create_runs([NewRun(name=f"t{number}/{stage}", stage=stage, config=d, group_id=f"g{number}",
                                           parent=index - 1 if index else None, seed=0, label_ratio=0.1,
                                           dataset="synthetic", objective="ssl", tags=tags)
                                    for index, stage in enumerate(("search", "finetune"))])
        for run_id, (status, error) in zip(ids, ends.values(), strict=True):
            registry.start_run(run_id, pid=1, host=this_host(), device="cpu")
            registry.finish_run(run_id, status, error)
        return ids

    _, tuned = trial(0, 0.01, {"search": ("finished", None), "finetune": ("finished", None)})
    dev = [(tuned, epoch + 1, epoch, "dev", "f1_weighted", value, 0.0) for epoch, value in enumerate((0.4, 0.5, 0.45))]
    registry.add_metrics([*dev, (tuned, 3, 1, "test", "f1_weighted", 0.42, 0.0)])  # epoch 1 kept
    _, pruned = trial(1, 0.001, {"search": ("finished", None), "finetune": ("killed", "stopped on request")})
    registry.add_metrics([(pruned, 1, 0, "dev", "f1_weighted", 0.2, 0.0)])
    trial(2, 0.1, {"search": ("failed", "boom"), "finetune": ("failed", "not started: parent did not finish")})
    StudySpec("s", str(tmp_path / "t.toml"), (), "metric.dev.f1_weighted", "maximize", ("search.arch_lr",)).save(runs)
    registry.close()
    return runs


def test_a_trials_outcome_and_objective_come_from_its_runs(recorded_study):
    from ssnas.tune.summary import study_summary

    with Registry(recorded_study / "registry.db", create=False, readonly=True) as registry:
        summary = study_summary(registry, "s")
    rows = {row.number: row for row in summary.trials}
    assert [rows[n].state for n in (0, 1, 2)] == ["complete", "pruned", "failed"]
    assert rows[0].value == 0.5 and rows[0].test_f1 == 0.42  # dev at the kept epoch (the test row's), not the last
    assert rows[0].params == {"search.arch_lr": 0.01} and summary.best == 0
    assert rows[1].value is None and rows[2].reason.endswith("search failed: boom")
    assert summary.cells()[0] == ["0*", "complete", "0.01", "0.5", "0.42", rows[0].runs[0] + " " + rows[0].runs[1]]


def test_the_report_of_a_study_tag_lists_its_trials(recorded_study):
    from ssnas.report import build_report

    with Registry(recorded_study / "registry.db", create=False, readonly=True) as registry:
        text = build_report(registry, "study:s").format_table()
    lines = text.splitlines()
    at = lines.index("study s: trials")
    assert lines[at + 1].split() == ["trial", "state", "search.arch_lr", "dev.f1_weighted", "test", "F1", "runs"]
    assert [line.split()[1] for line in lines[at + 2:at + 5]] == ["complete", "pruned", "failed"]
    assert "study s: 3 trial(s) in the registry (1 complete, 1 pruned, 1 failed)" in lines
    assert "best (*): trial 0, metric.dev.f1_weighted 0.5 (maximize); search.arch_lr=0.01" in lines


def test_the_dashboard_reports_a_trials_study(recorded_study):
    from tests.test_tui_app import app_for, drive, table_ids, until
    from tui.screens.report import ReportScreen

    app = app_for(recorded_study)

    async def scenario(pilot):
        await until(pilot, lambda: len(table_ids(app)) == 6)
        app.runs_screen.select_run(table_ids(app)[0])
        await pilot.press("p")
        assert isinstance(app.screen, ReportScreen) and app.screen.group_id == "study:s"
        tables = app.screen.query_one("#report-tables")
        await until(pilot, lambda: "study s: trials" in str(tables.render()))

    drive(app, scenario)


# -- real studies: trials are real runs of the runs folder's queue -----------------------------------------


def tune_recipe(folder: Path, stage: str, body: str) -> Path:
    parent = tiny_recipe(folder, stage=stage, epochs=1)
    path = folder / "study.toml"
    path.write_text(f'extends = "{parent.name}"\n\n{body}\n')
    return path


class Interrupt(Exception):
    pass


def test_a_study_tells_what_the_registry_holds_and_continues_where_it_stopped(tmp_path):
    from optuna.trial import TrialState

    from ssnas.runs.launching import LaunchOptions
    from ssnas.tune.summary import study_summary
    from ssnas.tune.trials import chain_ends, kept_value, runs_by_trial
    from ssnas.tune.tuner import TuneRequest, tune

    recipe = tune_recipe(tmp_path, "pipeline", """\
[run]
name = "tiny"
stages = ["search", "finetune"]

[finetune]
epochs = 2

[tune]
trials = 3
parallel = 3
sampler = "random"
pruner = "none"

[tune.space]
"search.arch_lr" = { low = 1e-3, high = 1e-1, log = true }
"views.policy" = { choices = ["cross_modal", "instance"] }
""")
    runs_dir = tmp_path / "runs"
    request = TuneRequest(str(recipe), launch=LaunchOptions(max_parallel=3), poll_s=0.2)

    def stop_at_second(line: str) -> None:
        if line.startswith("trial 1:"):
            raise Interrupt  # the tuner dies with two trials in flight

    with pytest.raises(Interrupt):
        tune(runs_dir, request, stop_at_second)
    lines: list[str] = []
    states = tune(runs_dir, request, lines.append)

    assert [line for line in lines if "followed again" in line] == \
        ["trial 0: in flight from an earlier session, followed again",
         "trial 1: in flight from an earlier session, followed again"]
    assert states == {"complete": 3}
    import optuna

    study = optuna.load_study(study_name="tiny", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(runs_dir / "tune" / "tiny.journal"))))
    registry = Registry(runs_dir / "registry.db", create=False, readonly=True)
    by_trial = runs_by_trial(registry, "tiny", config=True)
    assert sorted(by_trial) == [0, 1, 2]
    assert len({run.group_id for runs in by_trial.values() for run in runs}) == 3  # nothing submitted twice
    for frozen in study.trials:
        runs = by_trial[frozen.number]
        assert frozen.state == TrialState.COMPLETE
        assert [run.stage for run in runs] == ["search", "finetune"]
        assert all({"study:tiny", f"trial:{frozen.number}"} <= set(run.tags) for run in runs)
        assert runs[0].setting("search.arch_lr") == frozen.params["search.arch_lr"]
        assert runs[0].setting("views.policy") == frozen.params["views.policy"]
        (end,) = chain_ends(runs)
        assert frozen.value == kept_value(registry, end, "f1_weighted") == end.best_f1  # full mode: best dev epoch
    assert study.trials[2].params != study.trials[0].params  # the continued sampler drew afresh
    summary = study_summary(registry, "tiny")
    assert [row.state for row in summary.trials] == ["complete"] * 3
    assert summary.best == study.best_trial.number
    registry.close()


def test_values_that_break_a_rule_together_fail_their_trial_and_three_in_a_row_stop(tmp_path):
    import optuna
    from optuna.trial import TrialState

    from ssnas.errors import SsnasError
    from ssnas.tune.tuner import TuneRequest, tune

    recipe = tune_recipe(tmp_path, "pipeline", """\
[run]
name = "tiny"
stages = ["search", "finetune"]

[tune]
trials = 5

[tune.space]
"search.tau_min" = { low = 5.0, high = 9.0 }    # each bound is valid alone, but always above tau_max
"search.tau_max" = { low = 0.5, high = 4.0 }
""")
    lines: list[str] = []
    with pytest.raises(SsnasError, match=r"study tiny: 3 trials in a row could not be submitted; the last: "
                                         r"--set search.tau_min=[0-9.]+: [0-9.]+ is above search.tau_max"):
        tune(tmp_path / "runs", TuneRequest(str(recipe)), lines.append)
    assert len(lines) == 3 and all(" failed (not submitted: " in line for line in lines)
    assert not (tmp_path / "runs" / "registry.db").exists()  # refused before anything was queued
    study = optuna.load_study(study_name="tiny", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "runs" / "tune" / "tiny.journal"))))
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 3
    assert "tau_max" in study.trials[0].user_attrs["reason"]


def test_a_pruned_trial_is_killed_through_the_kill_path_and_tagged(tmp_path):
    import optuna
    from optuna.trial import TrialState

    from ssnas.tune.summary import study_summary
    from ssnas.tune.trials import runs_by_trial
    from ssnas.tune.tuner import TuneRequest, tune

    recipe = tune_recipe(tmp_path, "finetune", """\
[run]
name = "tiny"

[finetune]
model = "mlp"
epochs = 3000

[tune]
trials = 1
pruner = "median"

[tune.space]
"finetune.lr" = { low = 1e-3, high = 1e-2 }
""")
    runs_dir = tmp_path / "runs"
    always = optuna.pruners.ThresholdPruner(lower=2.0)  # any F1 is below 2: prune at the first epoch
    states = tune(runs_dir, TuneRequest(str(recipe), poll_s=0.2), pruner=always)

    assert states == {"pruned": 1}
    registry = Registry(runs_dir / "registry.db", create=False, readonly=True)
    deadline = time.monotonic() + 60
    while not (run := runs_by_trial(registry, "tiny")[0][0]).terminal and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run.status == "killed" and "pruned" in run.tags
    assert "stopped on request" in (run.error or "")
    assert [row.state for row in study_summary(registry, "tiny").trials] == ["pruned"]
    registry.close()
    study = optuna.load_study(study_name="tiny", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(runs_dir / "tune" / "tiny.journal"))))
    assert study.trials[0].state == TrialState.PRUNED
