"""Start-up of commands that do not train: fresh processes, best and median wall time and CPU time.

Side by side in one run: the floor (Python alone, Python importing click), `ssnas --help` as shipped
(the command table, ssnas/cli.py), the same help with every command module imported first (what
`--help` cost before the table), and two commands that do import their module. CPU time (user +
system of the child) is steadier than wall time on a shared machine. Then what a training worker pays
before its first step (ssnas.forkserver.preload: torch, torch._dynamo, the stage code), fewer times;
`--record` stores its median, torch._dynamo's share and the teardown `os._exit` skips, as the docs quote
them (bench/timings.py).

    python bench/startup_speed.py [--repeats 15] [--worker-repeats 5] [--record]

Run it with compiled bytecode (`python -m compileall -q ssnas tui`), as a pip install leaves it: with
PYTHONDONTWRITEBYTECODE set and an editable install, every start compiles ssnas from source.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timings  # noqa: E402

EAGER_HELP = (
    "import importlib\n"
    "from ssnas.cli import COMMANDS, main\n"
    "for entry in COMMANDS.values():\n"
    "    importlib.import_module(entry.target.partition(':')[0])\n"
    "import ssnas.runs.service\n"
    "try:\n    main(['--help'], prog_name='ssnas')\nexcept SystemExit:\n    pass\n"
)
PRELOAD = "from ssnas.forkserver import preload; preload()"
WORKER_CASES = {  # label -> code a fresh interpreter runs
    "worker: import torch": "import torch",
    "  + torch._dynamo": "import torch, torch._dynamo",
    "  + stage code (forkserver.preload)": PRELOAD,
    "  same, ending in os._exit": PRELOAD + "; import os; os._exit(0)",
}


def measure(argv: list[str], repeats: int) -> tuple[float, float, float]:
    """Best wall, median wall and best CPU seconds over `repeats` fresh processes."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(walls), statistics.median(walls), min(cpus)


def worker_figures(medians: dict[str, float]) -> dict[str, tuple[float, str]]:
    """A worker's start-up, torch._dynamo's part of it, and the teardown that ending in os._exit skips."""
    torch, dynamo, preload, exited = (medians[label] for label in WORKER_CASES)
    return {"worker_startup": (preload, "s"), "dynamo_import": (dynamo - torch, "s"),
            "worker_teardown": (preload - exited, "s")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--worker-repeats", type=int, default=5, help="for the worker's imports (seconds each)")
    parser.add_argument("--record", action="store_true", help="store the worker figures and rewrite the docs")
    args = parser.parse_args()
    ssnas = shutil.which("ssnas") or os.path.join(os.path.dirname(sys.executable), "ssnas")
    runs = tempfile.mkdtemp(prefix="ssnas-startup-")
    cases = [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("python -c 'import click'", [sys.executable, "-c", "import click"]),
        ("ssnas --help", [ssnas, "--help"]),
        ("  same, every command imported", [sys.executable, "-c", EAGER_HELP]),
        ("ssnas runs --help", [ssnas, "runs", "--help"]),
        ("ssnas queue (empty folder)", [ssnas, "--runs", runs, "queue"]),
    ]
    cases += [(label, [sys.executable, "-c", code]) for label, code in WORKER_CASES.items()]
    print(f"{'command':<36}{'wall best':>11}{'median':>9}{'cpu best':>10}")
    medians = {}
    for label, argv in cases:
        best, medians[label], cpu = measure(argv, args.worker_repeats if label in WORKER_CASES else args.repeats)
        print(f"{label:<36}{best * 1000:>9.0f}ms{medians[label] * 1000:>7.0f}ms{cpu * 1000:>8.0f}ms")
    shutil.rmtree(runs, ignore_errors=True)
    print(f"\n{args.repeats} fresh processes each ({args.worker_repeats} for the worker's); "
          f"load average {os.getloadavg()[0]:.1f}")
    if args.record:
        timings.publish(worker_figures(medians))


if __name__ == "__main__":
    main()
