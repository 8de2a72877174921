"""Start-up of commands that do not train: fresh processes, best and median wall time and CPU time.

Side by side in one run: the floor (Python alone, Python importing click), `ssnas --help` as shipped
(the command table, ssnas/cli.py), the same help with every command module imported first (what
`--help` cost before the table), and two commands that do import their module. CPU time (user +
system of the child) is steadier than wall time on a shared machine.

    python bench/startup_speed.py [--repeats 15]

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

EAGER_HELP = (
    "import importlib\n"
    "from ssnas.cli import COMMANDS, main\n"
    "for entry in COMMANDS.values():\n"
    "    importlib.import_module(entry.target.partition(':')[0])\n"
    "import ssnas.runs.service\n"
    "try:\n    main(['--help'], prog_name='ssnas')\nexcept SystemExit:\n    pass\n"
)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
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
    print(f"{'command':<34}{'wall best':>11}{'median':>9}{'cpu best':>10}")
    for label, argv in cases:
        best, median, cpu = measure(argv, args.repeats)
        print(f"{label:<34}{best * 1000:>9.0f}ms{median * 1000:>7.0f}ms{cpu * 1000:>8.0f}ms")
    shutil.rmtree(runs, ignore_errors=True)
    print(f"\n{args.repeats} fresh processes each; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
