"""TensorBoard as it shows runs, read back with TensorBoard's own readers: each step once after a resume,
the HParams session ended with the run's real status, every metric in the HParams dashboard, each run by
its name and id."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pytest
from tensorboard.backend.event_processing import data_provider, event_file_loader, plugin_event_multiplexer
from tensorboard.context import RequestContext
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import api_pb2, backend_context, get_experiment, list_session_groups

from ssnas.recipe import load_recipe
from ssnas.registry import Registry
from ssnas.scheduling.executor import WorkerExit
from ssnas.tensorboard_run import SESSION_FILE, tensorboard_dir
from ssnas.tracking import RunReporter
from tests.e2e import tiny_recipe, wait_for
from tests.test_worker_faults import in_process, queue_again, start_worker

NAME = "tiny[seed=0]/search"


class TensorBoard:
    """What `tensorboard --logdir LOGDIR` serves, read the way its scalar and HParams dashboards read it."""

    def __init__(self, logdir: Path) -> None:
        self.multiplexer = plugin_event_multiplexer.EventMultiplexer()
        self.multiplexer.AddRunsFromDirectory(str(logdir))
        self.multiplexer.Reload()
        provider = data_provider.MultiplexerDataProvider(self.multiplexer, str(logdir))
        self.context = backend_context.Context(
            base_plugin.TBContext(logdir=str(logdir), multiplexer=self.multiplexer, data_provider=provider))

    def runs(self) -> list[str]:
        return sorted(self.multiplexer.Runs())

    def scalar_tags(self) -> dict[str, list[str]]:
        return {run: sorted(tags) for run, tags in self.multiplexer.PluginRunToTagToContent("scalars").items()}

    def steps(self, run: str, tag: str) -> list[int]:
        return [event.step for event in self.multiplexer.Tensors(run, tag)]

    def experiment(self) -> api_pb2.Experiment:
        return get_experiment.Handler(RequestContext(), self.context, "", api_pb2.GetExperimentRequest()).run()

    def statuses(self) -> dict[str, str]:
        """Each session's status, by run, as the HParams dashboard lists them."""
        request = api_pb2.ListSessionGroupsRequest(allowed_statuses=list(api_pb2.Status.values()), slice_size=100)
        groups = list_session_groups.Handler(RequestContext(), self.context, "", request).run().session_groups
        return {session.name: api_pb2.Status.Name(session.status) for group in groups for session in group.sessions}


def queued_search(folder: Path, epochs: int = 2) -> tuple[Path, str, Path]:
    """A queued tiny search (3 steps an epoch) named NAME in `folder/runs`: the runs folder, its id, its folder."""
    recipe = load_recipe(tiny_recipe(folder, epochs=epochs))
    runs = folder / "runs"
    with Registry(runs / "registry.db") as registry:
        run_id = registry.create_run(name=NAME, stage="search", config=recipe.to_dict(), recipe_path=str(recipe.path))
        registry.update_run(run_id, run_dir=str(runs / run_id))
    return runs, run_id, runs / run_id


def logged_steps(folder: Path, tag: str) -> list[int]:
    """The steps of `tag` in the event files as written, every attempt's, before TensorBoard drops any."""
    return [event.step for path in sorted(folder.iterdir())
            for event in event_file_loader.EventFileLoader(str(path)).Load()
            if any(value.tag == tag for value in event.summary.value)]


def assert_each_step_once(board: TensorBoard) -> None:
    for run, tags in board.scalar_tags().items():
        for tag in tags:
            steps = board.steps(run, tag)
            assert steps == sorted(set(steps)), (run, tag)


def test_a_run_that_failed_after_a_checkpoint_and_resumed_shows_each_step_once(tmp_path, monkeypatch):
    runs, run_id, run_dir = queued_search(tmp_path)
    metric = RunReporter.metric

    def failing_at_step_5(self, key, value, *, step, **where):
        metric(self, key, value, step=step, **where)
        if key == "loss" and step == 5:
            raise RuntimeError("boom")

    monkeypatch.setattr(RunReporter, "metric", failing_at_step_5)
    assert in_process(runs, run_id) == WorkerExit.FAILED  # its checkpoint is at step 3
    run = f"{run_id}/tb/{tensorboard_dir(run_dir, NAME, run_id).name}"
    assert TensorBoard(runs).statuses() == {run: "STATUS_FAILURE"}

    monkeypatch.setattr(RunReporter, "metric", metric)
    with Registry(runs / "registry.db", create=False) as registry:
        queue_again(registry, run_id)
    assert in_process(runs, run_id) == WorkerExit.FINISHED
    assert logged_steps(runs / run, "loss/train") == [1, 2, 3, 4, 5, 4, 5, 6]  # both attempts logged 4 and 5
    board = TensorBoard(runs)
    assert board.steps(run, "loss/train") == [1, 2, 3, 4, 5, 6]
    assert_each_step_once(board)
    assert board.statuses() == {run: "STATUS_SUCCESS"}  # the failed attempt's end is gone


def test_a_killed_run_shows_by_name_and_id_and_its_resume_ends_it_a_success(tmp_path):
    runs, run_id, run_dir = queued_search(tmp_path, epochs=10)
    registry = Registry(runs / "registry.db", create=False)
    worker = start_worker(runs, run_id, run_dir)
    wait_for(lambda: any(e["message"].startswith("checkpoint") for e in registry.events(run_id)), interval=0.02)
    os.kill(worker.pid, signal.SIGTERM)
    assert worker.wait(timeout=120) == WorkerExit.KILLED
    folder = f"tb/tiny[seed=0]_search-{run_id[:8]}"
    assert TensorBoard(runs).statuses() == {f"{run_id}/{folder}": "STATUS_FAILURE"}  # no status says "stopped"

    queue_again(registry, run_id)
    assert start_worker(runs, run_id, run_dir).wait(timeout=300) == WorkerExit.FINISHED
    registry.close()
    board = TensorBoard(runs)
    assert board.runs() == [f"{run_id}/{folder}"]
    assert TensorBoard(run_dir).runs() == [folder]
    assert board.steps(f"{run_id}/{folder}", "loss/train") == list(range(1, 31))
    assert_each_step_once(board)
    assert board.statuses() == {f"{run_id}/{folder}": "STATUS_SUCCESS"}


def report(registry: Registry, run_dir: Path, config: dict, tags: list[str], status: str | None) -> str:
    """A run that reports one value of each `tags` (KEY/SPLIT), then ends `status`; its TensorBoard run."""
    run_id = registry.create_run(name=f"r-{status}", stage="search", config=config)
    reporter = RunReporter(registry.path, run_id, run_dir / run_id, hparams=config, name=f"r-{status}",
                           flush_every=0.05)
    for tag in tags:
        key, _, split = tag.partition("/")
        reporter.metric(key, 1.0, step=1, split=split or None)
    reporter.close(status)
    return f"{run_id}/tb/r-{status}-{run_id[:8]}"


def test_the_hparams_dashboard_lists_every_runs_metrics_and_hyperparameters_and_how_each_ended(tmp_path):
    registry = Registry(tmp_path / "registry.db")
    search, finetune = {"search": {"epochs": 2}}, {"finetune": {"lr": 0.1}, "data": {"label_ratio": 0.5}}
    ended = {
        report(registry, tmp_path, search, ["loss/train", "arch_entropy/arch", "lr"], "finished"): "STATUS_SUCCESS",
        report(registry, tmp_path, finetune, ["f1_weighted/dev", "f1_macro/test"], "failed"): "STATUS_FAILURE",
        report(registry, tmp_path, search, ["epoch_loss/dev"], "killed"): "STATUS_FAILURE",
        report(registry, tmp_path, search, ["loss/train"], None): "STATUS_UNKNOWN",  # a worker that could not tell
    }
    registry.close()
    board = TensorBoard(tmp_path)
    assert board.statuses() == ended
    experiment = board.experiment()
    logged = {tag for tags in board.scalar_tags().values() for tag in tags}
    assert {(info.name.group, info.name.tag) for info in experiment.metric_infos} == {("", tag) for tag in logged}
    assert logged == {"loss/train", "arch_entropy/arch", "lr", "f1_weighted/dev", "f1_macro/test", "epoch_loss/dev"}
    assert {info.name for info in experiment.hparam_infos} == {"search.epochs", "finetune.lr", "data.label_ratio"}


def test_a_session_end_that_cannot_be_written_fails_the_close_with_the_reason(tmp_path, monkeypatch):
    def full_disk(folder, status):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("ssnas.tracking.end_session", full_disk)
    registry = Registry(tmp_path / "registry.db")
    run_id = registry.create_run(name="r", stage="search", config={})
    reporter = RunReporter(registry.path, run_id, tmp_path / run_id, hparams={}, flush_every=0.05)
    with pytest.raises(RuntimeError, match="^tracking failed: .*No space left on device$"):
        reporter.close("finished")
    registry.close()


def test_a_runs_folder_is_named_after_it_and_its_id_and_safe_as_a_folder():
    at = Path("runs/abcdef123456")
    named = tensorboard_dir(at, "p[arm=ssl,seed=0]/search", "abcdef123456")
    assert named == at / "tb/p[arm=ssl,seed=0]_search-abcdef12"
    assert tensorboard_dir(at, "../up there", "abcdef123456") == at / "tb/up_there-abcdef12"
    assert tensorboard_dir(at, "", "abcdef123456") == at / "tb/abcdef12"
    assert tensorboard_dir(at, "x" * 500, "abcdef123456").name == "x" * 80 + "-abcdef12"
    assert SESSION_FILE < "events.out.tfevents.1000000000"  # read before the scalars' files of any attempt
