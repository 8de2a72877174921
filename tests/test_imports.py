"""Commands that do not train must start without torch (STYLE.md): checked in a fresh interpreter."""

import subprocess
import sys

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
     "ssnas.scheduling.warm", "ssnas.forkserver",
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


def test_help_and_completion_import_only_the_command_table():
    """`ssnas --help` and completing a command name read the table in ssnas/cli.py: no command module, so
    none of the registry, launch or scheduler code behind them (their cost: bench/startup_speed.py)."""
    code = (
        "import os, sys\n"
        "from ssnas.cli import main\n"
        "for argv, env in ((['--help'], {}), ([], {'_SSNAS_COMPLETE': 'bash_complete', 'COMP_WORDS': 'ssnas r',"
        " 'COMP_CWORD': '1'})):\n"
        "    os.environ.update(env)\n"
        "    try:\n        main(argv, prog_name='ssnas')\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('ssnas')), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.strip() == "['ssnas', 'ssnas.cli', 'ssnas.commands', 'ssnas.commands.lazy']"
    assert "Commands:" in done.stdout and "runs       List runs, newest first" in done.stdout
    completed = [line for line in done.stdout.splitlines() if line.startswith("plain,")]
    assert completed == [f"plain,{name}" for name in ("recipe", "report", "rerun", "resume", "rm", "run", "runs")]


def test_the_command_table_names_every_command_with_its_own_summary():
    """The table is the second place a command's name and first sentence live: it must agree with the
    command itself, and no command may be left out of it."""
    import importlib
    import pkgutil

    import click

    import ssnas.commands
    from ssnas.cli import COMMANDS, main
    from ssnas.commands.lazy import load_command

    def words(text):
        return " ".join(text.split())

    for name, entry in COMMANDS.items():
        command = load_command(name, entry)
        assert words(command.help).startswith(words(entry.summary)), name
    nested = set()
    found = []
    for info in pkgutil.iter_modules(ssnas.commands.__path__):
        module = importlib.import_module(f"ssnas.commands.{info.name}")
        for value in vars(module).values():
            if isinstance(value, click.Command):
                found.append(value)
                if isinstance(value, click.Group):
                    nested.update(id(sub) for sub in value.commands.values())
    assert {command.name for command in found if id(command) not in nested} == set(COMMANDS)
    assert set(main.list_commands(click.Context(main))) == set(COMMANDS)
