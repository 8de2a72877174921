"""`python -m ssnas.worker RUN_ID --runs DIR`: one stage of one run, as its own process.

The worker reads its run from the registry, marks it running, trains, and ends it `finished`,
`killed` (SIGTERM: it checkpoints at the next step and stops), or `failed` (an exception or a
non-finite loss, with the message). A run that already has a checkpoint resumes from it, and rows
logged after that checkpoint are dropped first, so a resumed run's history reads as one.

Where the run's files live and how the registry is reached is the `Place` of the run: locally, the
run's folder and the registry file; on a Ray node (`--head-fd`), a scratch folder and a link to the
registry on the head, through the Ray task that started the worker (ssnas.cluster).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssnas.registry import Registry
from ssnas.run_record import TERMINAL

if TYPE_CHECKING:
    from ssnas.tracking import ReportSink


@dataclass(frozen=True)
class Place:
    """Where a worker finds its run's files, and how its reporter reaches the registry."""

    run_dir: Path  # the run's folder: checkpoint, genotype, TensorBoard files
    parent_dir: Path | None  # the parent run's folder (its genotype.json, pretrained.pt)
    open_sink: Callable[[], ReportSink]  # opened on the reporter's flusher thread
    on_files: Callable[[], None] | None = None  # told when the run's files changed
    node: str | None = None  # the cluster node to record (default: the host)


def _device_name(requested: str) -> str:
    import torch

    if requested in ("auto", "cuda") and torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0")
        return f"cuda:{visible} ({torch.cuda.get_device_name(0)})"
    return "cpu" if requested == "auto" else requested


def wait_for_end(registry: Registry, run_id: str, poll: float = 0.05) -> None:
    """Get ready while run `run_id` goes on (the one whose device slot this worker takes over), then
    wait for it to end.

    What a prestarted worker does: the seconds of importing torch and the training code overlap
    the other run's last steps instead of following them.
    """
    import torch._dynamo  # noqa: F401 - torch.optim imports it on first use: 1.5 s on a small CPU

    import ssnas.execution  # noqa: F401
    import ssnas.tracking  # noqa: F401

    print(f"[info] prestarted: ready, waiting for run {run_id}", flush=True)
    while registry.get_run(run_id)["status"] not in TERMINAL:
        time.sleep(poll)


def why_not_startable(registry: Registry, run: dict) -> str | None:
    """Why a prestarted run must not start after all (killed while it waited, or its parent failed)."""
    if run["status"] != "queued":
        return f"it is {run['status']}"
    parent = run.get("parent_id")
    if parent and registry.get_run(parent)["status"] != "finished":
        return f"parent {parent} did not finish"
    return None


def run_worker(run_id: str, runs_dir: Path, after: str | None = None) -> int:
    """Run the stage against this machine's registry file; returns the exit code (`work`'s, or 4 when
    a prestarted run must not start after all)."""
    registry = Registry(runs_dir / "registry.db", create=False)
    try:
        if after is not None:
            wait_for_end(registry, after)
            reason = why_not_startable(registry, registry.get_run(run_id))
            if reason is not None:
                print(f"[info] not started: {reason}", flush=True)
                return 4
        run = registry.get_run(run_id)
        parent_dir = Path(registry.get_run(run["parent_id"])["run_dir"]) if run.get("parent_id") else None
        place = Place(Path(run["run_dir"]), parent_dir, lambda: Registry(registry.path, create=False))
        return work(registry, run, place)
    finally:
        registry.close()


def work(registry: Any, run: dict, place: Place) -> int:
    """Run the stage of `run`, recorded through `registry` (a `Registry`, or what stands for it on a
    Ray node); returns the process exit code (0 finished, 1 failed, 3 killed)."""
    run_id, run_dir = run["id"], place.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    registry.start_run(run_id, pid=os.getpid(), host=socket.gethostname(), device="starting", node=place.node)
    reporter = None
    try:
        import torch

        from ssnas.execution import run_stage
        from ssnas.recipe import Recipe
        from ssnas.stages.runtime import configure_threads
        from ssnas.tracking import CHECKPOINT, RunReporter

        configure_threads()
        recipe = Recipe.from_dict(run["config"], path=run.get("recipe_path") or "<registry>")
        registry.update_run(run_id, device=_device_name(recipe.run.device))
        resume = None
        if (run_dir / CHECKPOINT).exists():
            resume = torch.load(run_dir / CHECKPOINT, weights_only=True)
            registry.delete_rows_after(run_id, resume["position"]["step"])
            print(f"[info] resuming from step {resume['position']['step']}", flush=True)
        reporter = RunReporter(place.open_sink, run_id, run_dir, hparams=run["config"], on_files=place.on_files)
        signal.signal(signal.SIGTERM, lambda signum, frame: reporter.request_stop())
        summary = run_stage(run["stage"], recipe, run_dir, place.parent_dir, reporter, resume=resume)
        reporter.close()
        reporter = None
        print(json.dumps(summary), flush=True)
        registry.finish_run(run_id, "finished")
        return 0
    except BaseException as error:  # noqa: BLE001 - every way out must leave the run in a final state
        from ssnas.stages.training import StageStopped

        if reporter is not None:
            try:
                reporter.close()
            except Exception as close_error:  # noqa: BLE001
                print(f"[error] tracking: {close_error}", file=sys.stderr, flush=True)
        if isinstance(error, (StageStopped, KeyboardInterrupt)):
            print(f"[info] {error or 'interrupted'}", flush=True)
            registry.finish_run(run_id, "killed", error=str(error) or "interrupted")
            return 3
        traceback.print_exc()
        registry.finish_run(run_id, "failed", error=f"{type(error).__name__}: {error}".splitlines()[0])
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ssnas.worker", description="Run one stage of one registered run.")
    parser.add_argument("run_id")
    parser.add_argument("--runs", default="runs", help="the runs folder holding registry.db")
    parser.add_argument("--after", metavar="RUN", help="get ready now, start when run RUN has ended "
                        "(and this run's parent has finished)")
    parser.add_argument("--head-fd", type=int, metavar="FD",
                        help="on a Ray node: reach the head's registry through the socket FD of the Ray task that "
                             "started this worker, with --runs a scratch folder (ssnas.cluster)")
    parser.add_argument("--node", help="with --head-fd: the Ray node's name, recorded on the run")
    args = parser.parse_args(argv)
    if args.head_fd is not None:
        from ssnas.cluster.link import run_linked_worker

        return run_linked_worker(args.run_id, Path(args.runs), args.head_fd, args.node)
    return run_worker(args.run_id, Path(args.runs), args.after)


if __name__ == "__main__":
    exit_code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Registry, reporter, event files and checkpoint are all closed by now; skipping the
    # interpreter's teardown of torch saves 0.8 s per worker, which a chain of stages waits for.
    os._exit(exit_code)
