"""Dashboard speed (`ssnas tui`), headless, on a registry this script builds in a temporary folder.

The registry: 1,000 runs and 1,000,000 metric rows, built by `bench.registry_speed.build` (sweeps of
search/pretrain/finetune runs, executemany batches); then 10 of its runs are set running under this
process's pid (live workers, as far as a reader can tell), and one more run gets 100,000 metric rows.

"On screen" below means: the compositor has finished rendering the widget while it holds the new
state. The script wraps that widget instance's `render_lines` (what the compositor calls to paint
it) and records when a render ends with the condition true; a headless app composes frames as a
terminal one does, it only writes them nowhere. "cpu" is the process CPU time over the same span
(all threads), a figure less sensitive than wall time to other work on the machine.

1. First paint. In process: from constructing `SsnasApp` in `App.run_test(size=(160, 48))` until
   the runs table is on screen with every run; 5 fresh apps, median (textual already imported).
   Cold: `python -c` that imports `tui.app` and runs the app headless the same way, timed from
   spawning the process until it reports that paint (the import is what a user pays first).
2. One refresh. With the table on screen, the script writes as workers do (100 metric rows for
   each of 10 running runs, then a heartbeat with new progress for each), then calls the app's own
   `poll_now()`: it asks the registry in a thread worker (`RegistryReader.poll_runs`, read-only:
   `runs_changed_since`) and applies the answer on the UI thread (`_runs_polled` ->
   `RunsScreen.sync`, which updates only the changed cells). The worker's call and the sync are
   timed by wrapping those two methods of the app instance; the cycle runs from `poll_now()` until
   the table is on screen showing the new progress. That is what a write costs beyond the wait for
   the next poll tick (up to `--poll`, 1 s by default, which is not counted). 20 refreshes, medians.
3. Run view open: `app.open_run(RUN)` for the run with 100,000 metric rows, until its curves hold
   every point (feed read in its worker, series built on the UI thread) and until the plot is on
   screen; 5 opens, medians.

    python bench/tui_speed.py [--runs 1000] [--metric-rows 1000000] [--view-rows 100000] [--profile]

`--profile` prints the top of a cProfile of one in-process first paint and of the run-view opens.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.registry_speed import build  # noqa: E402
from ssnas.registry import Registry, this_host  # noqa: E402

SIZE = (160, 48)
REPEAT = 5
REFRESHES = 20
RUNNING = 10
BATCH = 100
AIM_FIRST_PAINT_MS = 1000.0
AIM_REFRESH_MS = 50.0

# The cold start: self-contained (importing this module would add its own imports to the time).
COLD = """
import time
began = time.perf_counter()
import asyncio, json, sys
from pathlib import Path
from tui.app import SsnasApp
imported = time.perf_counter()

async def main():
    expected = int(sys.argv[2])
    app = SsnasApp(Path(sys.argv[1]), poll_interval=3600.0)
    painted = []
    async with app.run_test(size=(160, 48)):
        while not app.runs_screen.query("#runs-table"):
            await asyncio.sleep(0.001)
        table = app.runs_screen.query_one("#runs-table")
        render_lines = table.render_lines

        def recorded(crop):
            lines = render_lines(crop)
            if table.row_count >= expected and not painted:
                painted.append(time.perf_counter())
            return lines

        table.render_lines = recorded
        while not painted:
            await asyncio.sleep(0.002)
        print(json.dumps({"import_s": imported - began, "painted_s": painted[0] - began}), flush=True)

asyncio.run(main())
"""


# -- the registry ----------------------------------------------------------------------------------


def make_registry(folder: Path, runs: int, metric_rows: int, view_rows: int) -> tuple[list[str], str]:
    """runs/registry.db as a long project; returns the ids of the running runs and of the big run."""
    runs_dir = folder / "runs"
    runs_dir.mkdir()
    ids = build(str(runs_dir / "registry.db"), runs, metric_rows)
    with Registry(runs_dir / "registry.db") as registry:
        running = ids[-RUNNING:]
        for run_id in running:
            registry.update_run(run_id, status="running", pid=os.getpid(), host=this_host(), device="cuda:0",
                                started_at=time.time() - 600, heartbeat_at=time.time(), ended_at=None,
                                progress=0.1)
        big = registry.create_run(name="long-search", stage="search", config={"search": {"epochs": 100}},
                                  dataset="mmimdb", objective="ssl", label_ratio=0.1)
        registry.update_run(big, status="finished", progress=1.0)
        rows = [(big, step, step // 1000, "train", "loss", 2.0 / (1 + step / 5000), 0.0)
                for step in range(loss_points(view_rows))]
        rows += [(big, step * 20, step // 50, "train", "lr", 1e-3, 0.0) for step in range(view_rows // 20)]
        rows += [(big, 1000 * (e + 1), e, "dev", "f1_weighted", 0.4 + e / 400, 0.0) for e in range(100)]
        registry.add_metrics(rows)
    return running, big


def loss_points(view_rows: int) -> int:
    """The big run's loss/train points: its rows less an lr every 20 steps and 100 dev F1s."""
    return view_rows - view_rows // 20 - 100


# -- probes ----------------------------------------------------------------------------------------


def table_of(app):
    """The runs table once the runs screen has composed it, else None."""
    tables = app.runs_screen.query("#runs-table")
    return tables.first() if tables else None


def table_rows(app) -> int:
    table = table_of(app)
    return table.row_count if table is not None else 0


class Painted:
    """When a widget was last put on screen showing what `shows(widget)` checks.

    Wraps the instance's `render_lines`; `arm()` forgets earlier paints, `at` is the end of the first
    render after it during which `shows` held (None until then).
    """

    def __init__(self, widget, shows: Callable[[object], bool]) -> None:
        self.shows = shows
        self.at: float | None = None
        render_lines = widget.render_lines

        def recorded(crop):
            lines = render_lines(crop)
            if self.at is None and self.shows(widget):
                self.at = time.perf_counter()
            return lines

        widget.render_lines = recorded

    def arm(self, shows: Callable[[object], bool] | None = None) -> None:
        self.at = None
        if shows is not None:
            self.shows = shows


def timed(record: list, method):
    """`method`, recording (start, end) of each call into `record`."""

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            record.append((start, time.perf_counter()))

    return wrapper


async def until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the dashboard")
        await asyncio.sleep(0.001)


# -- the measures ----------------------------------------------------------------------------------


async def first_paint(runs_dir: Path, expected: int) -> tuple[float, float]:
    """Seconds from constructing the app to the full table on screen, and the process CPU of it."""
    from tui.app import SsnasApp

    began, cpu = time.perf_counter(), time.process_time()
    app = SsnasApp(runs_dir, poll_interval=3600.0)
    async with app.run_test(size=SIZE):
        await until(lambda: table_of(app) is not None)
        painted = Painted(table_of(app), lambda table: table.row_count >= expected)
        await until(lambda: painted.at is not None)
        return painted.at - began, time.process_time() - cpu


def cold_first_paint(runs_dir: Path, expected: int) -> dict[str, float]:
    """Medians over REPEAT fresh processes: spawn -> table on screen, the import in the child, and CPU."""
    spawned, imports, cpus = [], [], []
    for _ in range(REPEAT):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", COLD, str(runs_dir), str(expected)], stdout=subprocess.PIPE,
                                 text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        line = child.stdout.readline()
        spawned.append(time.perf_counter() - began)
        child.communicate(timeout=60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        imports.append(json.loads(line)["import_s"])
    return {"painted": statistics.median(spawned), "import": statistics.median(imports),
            "cpu": statistics.median(cpus)}


async def refreshes(runs_dir: Path, expected: int, running: list[str]) -> dict[str, float]:
    """Median ms over REFRESHES writes: the worker's poll, the UI thread's sync, poll_now() -> sync done,
    poll_now() -> on screen, and the process CPU of the whole cycle."""
    from tui.app import SsnasApp

    app = SsnasApp(runs_dir, poll_interval=3600.0)
    polls, syncs, applied, painted, cpus = [], [], [], [], []
    writer = Registry(runs_dir / "registry.db", create=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: table_rows(app) >= expected and not app._polling)
        await pilot.pause()
        table = table_of(app)
        app.reader.poll_runs = timed(polls, app.reader.poll_runs)
        app.runs_screen.sync = timed(syncs, app.runs_screen.sync)
        probe = Painted(table, lambda _: False)
        step = 10_000
        for k in range(REFRESHES):
            progress = 0.1 + 0.8 * (k + 1) / REFRESHES
            for run_id in running:
                writer.add_metrics([(run_id, step + i, k, "train", "loss", 1.0 / (k + 2), 0.0) for i in range(BATCH)])
            for run_id in running:
                writer.heartbeat(run_id, progress)
            step += BATCH
            shown = f"{progress * 100:.0f}%"
            probe.arm(lambda table: all(str(table.get_cell(r, "progress")) == shown for r in running))
            before = len(syncs)
            began, cpu = time.perf_counter(), time.process_time()
            app.poll_now()
            await until(lambda: probe.at is not None)
            cpus.append(time.process_time() - cpu)
            applied.append(syncs[before][1] - began)
            painted.append(probe.at - began)
            await pilot.pause()  # quiet before the next write
    writer.close()
    ms = lambda values: 1000 * statistics.median(values)  # noqa: E731
    return {"poll": ms(end - start for start, end in polls[-REFRESHES:]),
            "sync": ms(end - start for start, end in syncs[-REFRESHES:]),
            "applied": ms(applied), "painted": ms(painted), "cpu": ms(cpus)}


async def run_view_opens(runs_dir: Path, expected: int, big: str, view_rows: int) -> dict[str, float]:
    """Median seconds from open_run to the curves holding every point, to the plot on screen, and CPU."""
    from textual_plotext import PlotextPlot

    from tui.app import SsnasApp
    from tui.screens.run import RunScreen
    from tui.widgets.curves import MetricCurves

    app = SsnasApp(runs_dir, poll_interval=3600.0)
    loaded, painted, cpus = [], [], []
    points = loss_points(view_rows)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: table_rows(app) >= expected)
        for _ in range(REPEAT):
            began, cpu = time.perf_counter(), time.process_time()
            app.open_run(big)
            await until(lambda: isinstance(app.screen, RunScreen) and app.screen.ready)
            curves = app.screen.query_one(MetricCurves)
            full = lambda: len(curves.series.get("loss/train", ())) == points  # noqa: E731
            probe = Painted(curves.query_one(PlotextPlot), lambda _: full())
            sets: list = []
            curves.set_series = timed(sets, curves.set_series)  # the feed's first answer takes far longer
            await until(full)
            loaded.append(sets[-1][1] - began)
            await until(lambda: probe.at is not None)
            painted.append(probe.at - began)
            cpus.append(time.process_time() - cpu)
            app.pop_screen()
            await pilot.pause()
    return {"loaded": statistics.median(loaded), "painted": statistics.median(painted),
            "cpu": statistics.median(cpus)}


def profile(coroutine) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(coroutine)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--metric-rows", type=int, default=1_000_000)
    parser.add_argument("--view-rows", type=int, default=100_000, help="metric rows of the run the view opens")
    parser.add_argument("--profile", action="store_true", help="print cProfile tops of a first paint and the opens")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        running, big = make_registry(Path(tmp), args.runs, args.metric_rows, args.view_rows)
        built = time.perf_counter() - began
        runs_dir = Path(tmp) / "runs"
        expected = args.runs + 1

        paints = [asyncio.run(first_paint(runs_dir, expected)) for _ in range(REPEAT)]
        cold = cold_first_paint(runs_dir, expected)
        refresh = asyncio.run(refreshes(runs_dir, expected, running))
        view = asyncio.run(run_view_opens(runs_dir, expected, big, args.view_rows))
        if args.profile:
            print(profile(first_paint(runs_dir, expected)))
            print(profile(run_view_opens(runs_dir, expected, big, args.view_rows)))

    paint_aim, refresh_aim = f"< {AIM_FIRST_PAINT_MS:.0f} ms", f"< {AIM_REFRESH_MS:.0f} ms"
    rows = [
        (f"build: {expected:,} runs, {args.metric_rows + args.view_rows:,} metric rows", f"{built:.1f} s", "", ""),
        (f"first paint, in process: new app -> table on screen (median of {REPEAT})",
         f"{1000 * statistics.median(p for p, _ in paints):.0f} ms",
         f"{1000 * statistics.median(c for _, c in paints):.0f} ms", paint_aim),
        (f"first paint, cold process: spawn -> table on screen (median of {REPEAT})",
         f"{1000 * cold['painted']:.0f} ms", f"{1000 * cold['cpu']:.0f} ms", paint_aim),
        ("    of which `import tui.app` in the child", f"{1000 * cold['import']:.0f} ms", "", ""),
        (f"refresh ({RUNNING} runs changed): poll in the worker (median of {REFRESHES})",
         f"{refresh['poll']:.1f} ms", "", ""),
        ("refresh: RunsScreen.sync on the UI thread", f"{refresh['sync']:.1f} ms", "", ""),
        ("refresh: poll_now() -> applied", f"{refresh['applied']:.1f} ms", "", ""),
        ("refresh: poll_now() -> new progress on screen", f"{refresh['painted']:.1f} ms", f"{refresh['cpu']:.1f} ms",
         refresh_aim),
        (f"run view, {args.view_rows:,} metric rows: open -> curves loaded (median of {REPEAT})",
         f"{1000 * view['loaded']:.0f} ms", "", ""),
        ("run view: open -> plot on screen", f"{1000 * view['painted']:.0f} ms", f"{1000 * view['cpu']:.0f} ms", ""),
    ]
    width = max(len(name) for name, *_ in rows)
    print(f"SQLite {sqlite3.sqlite_version}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; headless {SIZE[0]}x{SIZE[1]}; cpu = process CPU time, all threads")
    print(f"{'measure':<{width}}  {'wall':>9}  {'cpu':>9}  aim")
    print(f"{'-' * width}  {'-' * 9}  {'-' * 9}  {'-' * 10}")
    for name, wall, cpu, aim in rows:
        print(f"{name:<{width}}  {wall:>9}  {cpu:>9}  {aim}")


if __name__ == "__main__":
    main()
