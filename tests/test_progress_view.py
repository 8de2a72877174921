"""The foreground view of `ssnas run`: bars with an ETA on a terminal, plain lines into a pipe."""

from __future__ import annotations

import dataclasses
import io
import re
import time

import pytest

from ssnas.progress_view import LaunchView, ProgressBars, eta_seconds
from ssnas.registry import Registry
from ssnas.run_record import Run

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_the_eta_is_what_is_left_at_the_pace_so_far():
    assert eta_seconds(0.25, 0.5, 10.0) == 20.0
    assert eta_seconds(0.0, 0.1, 6.0) == pytest.approx(54.0)
    assert eta_seconds(0.3, 0.3, 10.0) is None  # nothing moved: no pace yet
    assert eta_seconds(0.3, 0.4, 0.0) is None


def test_a_bar_shows_run_stage_percent_elapsed_and_the_eta_once_the_run_moved():
    out = io.StringIO()
    bars = ProgressBars(out)
    run = Run(id="abcdef123456", name="tiny[seed=0]/search", stage="search", status="running", created_at=0.0,
              started_at=time.time() - 65, worked_seconds=0.0, progress=0.25)
    bars.show(run, None, now=100.0)  # the worker starting up: the pace is measured from its last look at 25%
    bars.show(run, None, now=104.0)
    bars.refresh()
    bars.show(dataclasses.replace(run, progress=0.5), 0.125, now=114.0)
    bars.refresh()
    bars.show(dataclasses.replace(run, status="finished"), None)
    bars.refresh()
    bars.stop()
    frames = [ANSI.sub("", frame).strip() for frame in out.getvalue().split("\r")]
    first, moved = (next(f for f in frames if f"{p}%" in f) for p in (" 25", " 50"))
    assert first.startswith("abcdef12 tiny[seed=0]/search search") and first.endswith("1m05s ETA -")
    assert moved.endswith("50% 1m05s ETA 20s loss 0.1250")
    assert bars.tasks == {}  # an ended run has no bar


def running_run(registry: Registry) -> str:
    run_id = registry.create_run(name="tiny", stage="search", config={})
    registry.start_run(run_id, pid=1, host="here", device="cpu")
    return run_id


def test_on_a_terminal_status_changes_print_above_the_bars(tmp_path):
    registry = Registry(tmp_path / "registry.db")
    run_id = registry.create_run(name="tiny", stage="search", config={})
    out = io.StringIO()
    view = LaunchView(registry, [run_id], stream=out, interactive=True)
    view.tick()  # queued: no bar, the live display drawn (empty)
    registry.start_run(run_id, pid=1, host="here", device="cpu")
    view.tick()
    registry.heartbeat(run_id, 0.5)
    view.tick()
    registry.finish_run(run_id, "finished")
    view.tick()
    view.close()
    text = ANSI.sub("", out.getvalue())
    assert f"[1/1] {run_id[:8]} tiny running\n" in text and f"[1/1] {run_id[:8]} tiny finished\n" in text
    assert f"{run_id[:8]} tiny search" in text and " 50% " in text and "ETA" in text
    registry.close()


def test_into_a_pipe_the_view_writes_plain_lines(tmp_path):
    registry = Registry(tmp_path / "registry.db")
    run_id = running_run(registry)
    out = io.StringIO()
    view = LaunchView(registry, [run_id], stream=out)
    for progress in (0.05, 0.25, 0.3):
        registry.heartbeat(run_id, progress)
        view.tick()
    registry.add_metrics([(run_id, 1, 0, "train", "loss", 0.75, 0.0)])
    registry.heartbeat(run_id, 1.0)
    view.tick()
    registry.finish_run(run_id, "failed", error="boom")
    view.tick()
    view.close()
    short = run_id[:8]
    assert out.getvalue().splitlines() == [
        f"[1/1] {short} tiny running",
        f"{short} search   [#####...............]  25%",
        f"{short} search   [######..............]  30%",
        f"{short} search   [####################] 100% loss 0.7500",
        f"[1/1] {short} tiny failed: boom",
    ]
    registry.close()


def test_ssnas_run_into_a_pipe_follows_its_run_in_plain_lines(tmp_path):
    from click.testing import CliRunner

    from ssnas.cli import main
    from tests.e2e import tiny_recipe

    done = CliRunner().invoke(main, ["--runs", str(tmp_path / "runs"), "run", str(tiny_recipe(tmp_path)),
                                     "--max-parallel", "1"])
    assert done.exit_code == 0, done.output
    assert "\r" not in done.output and "\x1b" not in done.output
    lines = done.output.splitlines()
    short = lines[1].split()[1]  # after "group ID: 1 run(s) queued"
    assert lines[1] == f"[1/1] {short} tiny running"
    end = lines.index(f"[1/1] {short} tiny finished")
    for line in lines[2:end]:  # a line at each tenth the view saw pass
        assert re.fullmatch(rf"{short} search   \[[#.]{{20}}\] +\d+%( loss \d+\.\d{{4}})?", line), line
    assert lines[end + 1].split() == ["id", "name", "stage", "status", "test_f1", "error"]
