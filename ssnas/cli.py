"""The `ssnas` command line: thin over library calls. A command's module is imported only when it runs,
so `ssnas --help` and completion stay fast (tests/test_imports.py)."""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from ssnas.commands.lazy import CommandEntry, LazyGroup

COMMANDS = {
    "arch": CommandEntry("ssnas.commands.inspect:arch_command",
                         "A search's architecture weights at one epoch, argmax marked, with how sure each choice is "
                         "and a verdict, and how the argmax and the certainty moved."),
    "baselines": CommandEntry("ssnas.commands.demo:baselines", "The bundled genotypes, to diff runs against."),
    "compare": CommandEntry("ssnas.commands.inspect:compare_command",
                            "Runs side by side: differing config values, final metrics, status, duration, genotype "
                            "similarity."),
    "demo": CommandEntry("ssnas.commands.demo:demo",
                         "Search -> pretrain -> fine-tune on the embedded synthetic dataset, in this process."),
    "diff": CommandEntry("ssnas.commands.inspect:diff_command",
                         "A run's latest genotype against another run's or a bundled baseline: differing choices and "
                         "similarity."),
    "export": CommandEntry("ssnas.commands.inspect:export_command",
                           "Write a run's genotype, metrics and resolved recipe to a folder, for papers and other "
                           "tools; or runs into an MLflow store (--mlflow), every run without RUN, --where or "
                           "--group."),
    "features": CommandEntry("ssnas.commands.features:features",
                             "Write ssnas-features/1 files: a known dataset's pyramids, or your own arrays "
                             "(from-arrays)."),
    "kill": CommandEntry("ssnas.commands.manage:kill",
                         "Stop runs: a running worker checkpoints and ends killed; a queued run never starts."),
    "metrics": CommandEntry("ssnas.commands.inspect:metrics_command",
                            "A run's metrics: a summary of every series, or one series as a table or a plot."),
    "plugins": CommandEntry("ssnas.commands.plugins:plugins_command",
                            "The installed plugins of every group: name, distribution, version and object."),
    "queue": CommandEntry("ssnas.commands.queue:queue_command",
                          "Show the runs folder's scheduler and queue (running, then queued runs in start order, "
                          "with why each waits); start a scheduler for queued runs that have none."),
    "recipe": CommandEntry("ssnas.commands.launch:recipe", "Inspect recipes."),
    "report": CommandEntry("ssnas.commands.report:report",
                           "Per arm and label ratio: test F1 over seeds, gap to no-search baselines, architectures, "
                           "search; ssl - random."),
    "rerun": CommandEntry("ssnas.commands.launch:rerun",
                          "Run runs again from the start as new runs with the same recipe (and the same parent), or "
                          "with --set overrides."),
    "resume": CommandEntry("ssnas.commands.launch:resume",
                           "Continue a killed, failed or lost run from its last checkpoint, under the same id (and its "
                           "queued children)."),
    "rm": CommandEntry("ssnas.commands.manage:rm",
                       "Delete runs: their registry rows and their folders (asks first)."),
    "run": CommandEntry("ssnas.commands.launch:run",
                        "Validate a recipe, queue its runs for the runs folder's scheduler, and follow them."),
    "runs": CommandEntry("ssnas.commands.inspect:runs_command",
                         "List runs, newest first: status, progress, elapsed time, loss and F1; or the fields you "
                         "choose, as a table, CSV, JSON or Parquet."),
    "show": CommandEntry("ssnas.commands.inspect:show_command",
                         "Everything about one run: fields, recipe, genotype, metrics, files, last events."),
    "tag": CommandEntry("ssnas.commands.manage:tag", "Add (or remove) tags on a run."),
    "tui": CommandEntry("ssnas.commands.tui:tui",
                        "Live dashboard: runs as they train, their curves, weights, genotypes and logs; launch, kill, "
                        "tag, compare."),
    "tune": CommandEntry("ssnas.commands.tune:tune_command",
                         "Tune the keys of RECIPE's [tune] table with Optuna's ask-and-tell."),
}


class SsnasGroup(LazyGroup):
    """The command table, and the exit status (ssnas.exit_status) of what a command leaves to it: Ctrl-C is an
    interruption, and any exception that is not click's own is a bug, shown with its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise  # click reports these itself (a closed pipe quietly)
        except KeyboardInterrupt:
            from ssnas.exit_status import interrupted

            click.echo("\nAborted!", err=True)
            raise SystemExit(interrupted(signal.SIGINT)) from None
        except Exception as error:
            from ssnas.exit_status import InternalError

            raise InternalError.of(error) from error


@click.group(cls=SsnasGroup, table=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ssnas")
@click.option("--runs", "runs_dir", envvar="SSNAS_RUNS", type=click.Path(file_okay=False),
              help="The runs folder (registry.db and one folder per run). Default: ./runs.")
@click.pass_context
def main(ctx: click.Context, runs_dir: str | None) -> None:
    """Self-supervised architecture search for multimodal fusion networks, and its experiments."""
    from ssnas.runs.service import RunService

    ctx.obj = RunService(runs_dir)


if __name__ == "__main__":
    sys.exit(main())
