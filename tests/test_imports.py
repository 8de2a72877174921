"""Commands that do not train must start without torch (STYLE.md): checked in a fresh interpreter."""

import subprocess
import sys
import time

import pytest

HEAVY = ("torch", "torchvision", "transformers", "tensorboard", "textual", "ray")
# Optional extras: a command imports one only when it uses it (--format parquet, export --mlflow, ...).
EXTRAS = ("ray", "pyarrow", "pandas", "mlflow", "optuna", "submitit")


@pytest.mark.parametrize(
    "module",
    ["ssnas", "ssnas.errors", "ssnas.nas.genotype", "ssnas.nas.derive", "ssnas.nas.vocabulary", "ssnas.nas.space",
     "ssnas.baselines", "ssnas.config.stages", "ssnas.config.runtime", "ssnas.config.views", "ssnas.config.data",
     "ssnas.recipe", "ssnas.cli", "ssnas.cluster.executor", "ssnas.cluster.link",
     "ssnas.data.convert", "ssnas.data.array_files", "ssnas.nas.binding", "ssnas.data.nodes",
     "ssnas.nas.certainty", "ssnas.records", "ssnas.scheduling.executor", "ssnas.scheduling.local",
     "ssnas.scheduling.scheduler", "ssnas.scheduling.state", "ssnas.scheduling.daemon", "ssnas.runs.launching",
     "ssnas.commands.queue", "ssnas.run_record", "ssnas.runs.service", "ssnas.runs.format", "ssnas.runs.actions",
     "ssnas.runs.compare", "ssnas.runs.export", "ssnas.runs.lookup", "ssnas.plugins", "ssnas.commands.plugins",
     "ssnas.data.plugin_dataset", "ssnas.sinks", "ssnas.runs.table", "ssnas.runs.completion",
     "ssnas.runs.mlflow_export"],
)
def test_light_modules_import_no_heavy_library(module):
    """The run service is imported by both front ends: it must not need the CLI's click either."""
    forbidden = HEAVY + (("click",) if module.startswith(("ssnas.runs", "ssnas.run_record")) else ())
    code = f"import sys, {module}; print(','.join(m for m in {forbidden!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["features", "--help"],
                                  ["features", "from-arrays", "--help"], ["baselines"],
                                  ["runs", "--help"], ["show", "--help"], ["metrics", "--help"], ["arch", "--help"],
                                  ["diff", "--help"], ["compare", "--help"], ["export", "--help"],
                                  ["queue", "--help"], ["--runs", "/nonexistent-ssnas-runs", "queue"],
                                  ["run", "--help"], ["resume", "--help"], ["rerun", "--help"], ["plugins"]])
def test_commands_that_do_not_train_import_no_torch(argv):
    code = (
        "import sys\n"
        "from ssnas.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print([m for m in " + repr(HEAVY) + " if m in sys.modules], file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip()
    assert done.stderr.strip() == "[]"


def test_python_dash_m_ssnas_help_names_itself():
    done = subprocess.run([sys.executable, "-m", "ssnas", "--help"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("Usage: python -m ssnas [OPTIONS]")


def test_help_imports_no_optional_extra_and_no_torch():
    code = (
        "import sys\n"
        "from ssnas.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {EXTRAS + HEAVY!r} if m in sys.modules], file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("Usage:")
    assert done.stderr.strip() == "[]"


def test_help_is_fast():
    """`ssnas --help` in a fresh interpreter, best of 5, beyond what starting Python costs: measured in
    bench/RESULTS.md; the bound is loose, for a busy machine, yet catches a heavy import (torch: seconds)."""

    def best_of_5(code: str) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        return min(times)

    overhead = best_of_5("from ssnas.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    overhead -= best_of_5("pass")
    assert overhead < 1.0, f"{overhead:.2f} s"
