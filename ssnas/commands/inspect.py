"""Commands that read the registry and the run folders: runs, show, metrics, arch, diff, compare, export.

They only read (a reader's `reconcile` may mark a dead run `lost`, as every reader does) and never
import torch: run folders are listed, not loaded. Reference and examples: docs/cli.md.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ssnas.commands.common import (
    OUTPUT_FORMATS,
    RUN,
    UserError,
    emit,
    output_format,
    output_options,
    pass_service,
    reports_errors,
    table,
)
from ssnas.run_record import STAGES, STATUSES, Run
from ssnas.runs import table as run_table
from ssnas.runs.format import (
    config_lines,
    duration,
    elapsed_seconds,
    field_lines,
    local_time,
    number,
    percent,
    printable,
    run_fields,
    size_text,
    stage_text,
    status_text,
)
from ssnas.runs.lookup import test_scores
from ssnas.runs.service import RunService

if TYPE_CHECKING:
    from ssnas.nas.certainty import ChoiceCertainty, SearchCertainty
    from ssnas.nas.genotype import Genotype
    from ssnas.registry import Registry

# What a worker leaves in runs/RUN_ID/ (ssnas.execution and ssnas.tracking name them; both import torch).
RUN_FILES = ("checkpoint.pt", "genotype.json", "pretrained.pt", "results.json", "log.txt", "tb")
SLOT_NAMES = ("x", "y")
EVENTS_SHOWN = 10
PER_EPOCH_COLUMNS = 12  # beyond this many epochs the argmax evolution is run-length encoded
ARCH_WIDTH = 100  # `ssnas arch` wraps its legend and verdict here


# -- reading ---------------------------------------------------------------------------------------


def open_registry(service: RunService) -> Registry:
    """The registry, closed when the command ends; a missing one is an error for everything but `runs`."""
    registry = service.reader()
    click.get_current_context().call_on_close(registry.close)
    return registry


def require_genotype(service: RunService, run: Run) -> tuple[Genotype, str]:
    """The run's genotype and where it came from; a missing or broken one is a one-line error."""
    found = service.genotype(run)
    if found.error:
        raise UserError(found.error)
    if found.genotype is None:
        raise UserError(f"run {run.short_id} has no genotype yet (none logged, "
                        f"no genotype.json in {service.folder(run)})")
    return found.genotype, found.where


# -- runs ------------------------------------------------------------------------------------------

RUNS_COLUMNS = ("id", "name", "stage", "objective", "dataset", "r", "seed", "status", "progress", "elapsed", "loss",
                "dev F1", "test F1", "created")


def runs_table_row(run: Run, now: float, gone: bool = False) -> dict[str, str]:
    return {
        "id": run.short_id, "name": run.name, "stage": stage_text(run), "objective": run.objective or "-",
        "dataset": run.dataset or "-", "r": number(run.label_ratio, "g"), "seed": number(run.seed, "d"),
        "status": status_text(run.status, gone), "progress": percent(run.progress),
        "elapsed": duration(elapsed_seconds(run, now)), "loss": number(run.latest_loss),
        "dev F1": number(run.best_f1, ".3f"), "test F1": number(run.test_f1, ".3f"),
        "created": local_time(run.created_at, "%m-%d %H:%M"),
    }


@click.command("runs")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES),
              help="Only runs in this status (repeat for several).")
@click.option("--stage", type=click.Choice(STAGES), help="Only runs of this stage.")
@click.option("--dataset", help="Only runs on this dataset.")
@click.option("--tag", help="Only runs carrying this tag.")
@click.option("--group", help="Only the runs of this sweep or pipeline group (its full id).")
@click.option("--where", metavar="EXPR",
              help="A filter, e.g. \"label_ratio <= 0.1 AND metric.test.f1_weighted > 0.5\" (docs/cli.md).")
@click.option("--sort", default="-created_at", show_default=True, metavar="FIELD[,FIELD]",
              help="Fields to sort by, '-' for descending, e.g. -best_f1 or label_ratio,seed.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True, help="At most N runs (0: all).")
@click.option("--columns", metavar="FIELD[,FIELD]",
              help="The fields to print, named as in --where: e.g. id,search.arch_lr,metric.dev.f1_weighted.")
@click.option("--format", "chosen_format", type=click.Choice(OUTPUT_FORMATS),
              help="table (default), csv, json or parquet (pip install 'ssnas[parquet]').")
@click.option("--output", "-o", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write to FILE instead of the terminal (--format parquet needs it unless piped).")
@output_options
@pass_service
@reports_errors
def runs_command(service: RunService, statuses: tuple[str, ...], stage: str | None, dataset: str | None,
                 tag: str | None, group: str | None, where: str | None, sort: str, limit: int, columns: str | None,
                 chosen_format: str | None, output: str | None, as_json: bool, as_csv: bool) -> None:
    """List runs, newest first: status, progress, elapsed time, loss and F1; or the fields you choose, as a
    table, CSV, JSON or Parquet."""
    fmt = output_format(chosen_format, as_json, as_csv)
    if fmt == "parquet" and output is None and sys.stdout.isatty():
        raise click.UsageError("--format parquet writes binary: give --output FILE, or pipe it")
    chosen = run_table.resolve_columns(columns) if columns is not None else None
    if not service.has_registry():
        return _write_runs(fmt, chosen, output, [], None, f"no runs yet ({service.registry_path} does not exist)")
    registry = open_registry(service)
    config = (fmt == "json" and chosen is None) or (chosen is not None and run_table.reads_config(chosen))
    rows = registry.runs(status=statuses or None, stage=stage, dataset=dataset, tag=tag, group=group, where=where,
                         sort=sort, limit=limit + 1 if limit else None, config=config)
    more = bool(limit) and len(rows) > limit
    rows = rows[:limit] if limit else rows
    if tag or (where and where.strip()):
        _name_corrupt(registry, {row.id for row in rows})
    filtered = statuses or stage or dataset or tag or group or (where and where.strip())
    empty = "no runs match" if filtered else f"no runs yet in {service.registry_path}"
    _write_runs(fmt, chosen, output, rows, registry, empty)
    if more:
        click.echo(f"(the first {limit} shown; --limit 0 lists all)", err=fmt != "table")


def _write_runs(fmt: str, chosen: list[run_table.Column] | None, output: str | None, runs: Sequence[Run],
                registry: Registry | None, empty: str) -> None:
    """The listing in its format, to --output or standard output; with no runs, the table format says why
    and the others are well formed and empty (`[]`, the CSV header, a Parquet file without rows)."""
    now = time.time()
    if fmt == "table" and not runs:
        return _deliver(empty + "\n", output)
    if fmt == "table" and chosen is None:
        assert registry is not None  # there are runs
        listing = [runs_table_row(run, now, registry.worker_gone(run)) for run in runs]
        return _deliver(table(listing, RUNS_COLUMNS) + "\n", output)
    if fmt == "json" and chosen is None:
        return _deliver(_json_text([{**run.to_dict(), "elapsed_s": elapsed_seconds(run, now)} for run in runs]),
                        output)
    columns = chosen if chosen is not None else run_table.default_columns()
    rows: list[dict[str, Any]] = []
    if runs:
        assert registry is not None
        rows = run_table.column_rows(registry, runs, columns, now)
        for warning in run_table.unfilled(registry, runs, rows, columns):
            click.echo(printable(warning), err=True)
    if fmt == "table":
        return _deliver(table(run_table.people_rows(rows, columns), [c.name for c in columns]) + "\n", output)
    if fmt == "json":
        return _deliver(_json_text(rows), output)
    if fmt == "csv":
        return _deliver(run_table.csv_text(rows, columns), output)
    _deliver(run_table.parquet_bytes(rows, columns), output)


def _json_text(records: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(records), indent=2, default=str) + "\n"


def _deliver(content: str | bytes, output: str | None) -> None:
    """To the --output file, or standard output (bytes as they are)."""
    if output is not None:
        if isinstance(content, bytes):
            Path(output).write_bytes(content)
        else:
            Path(output).write_text(content)
    elif isinstance(content, bytes):
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
    else:
        click.echo(content, nl=False)


def _name_corrupt(registry: Registry, shown: set[str]) -> None:
    """A warning on stderr per run whose stored JSON is corrupt and that a filter left out: it is not lost."""
    for run_id, problem in registry.corrupt_runs().items():
        if run_id not in shown:
            click.echo(printable(f"warning: run {run_id[:8]}: {problem}; left out"), err=True)


# -- show ------------------------------------------------------------------------------------------


def metric_lines(registry: Registry, run: Run) -> list[str]:
    lines = []
    test = test_scores(registry, run)
    if test:
        lines.append("  test     " + "  ".join(f"{key} {value:.4f}" for key, value in test.items()))
    dev = registry.metrics(run.id, key="f1_weighted", split="dev")
    if dev:
        best = max(dev, key=lambda row: row["value"])
        lines.append(f"  dev      best f1_weighted {best['value']:.4f} (epoch {number(best['epoch'], 'd')})")
    if run.latest_loss is not None:
        lines.append(f"  train    last loss {run.latest_loss:.4g}")
    return lines or ["  (none logged)"]


def file_lines(folder: Path) -> list[str]:
    if not folder.is_dir():
        return [f"  (no folder {folder})"]
    lines = []
    for path in sorted(folder.iterdir(), key=lambda p: (p.name not in RUN_FILES, p.name)):
        if path.is_dir():
            count = sum(1 for p in path.rglob("*") if p.is_file())
            lines.append(f"  {path.name}/  ({count} file{'s' if count != 1 else ''})")
        else:
            lines.append(f"  {path.name}  ({size_text(path.stat().st_size)})")
    return lines or ["  (empty)"]


def event_lines(registry: Registry, run_id: str) -> list[str]:
    events = registry.events(run_id)[-EVENTS_SHOWN:]
    return [f"  {local_time(e['time'], '%m-%d %H:%M:%S')}  {e['level']:<7} {e['message']}" for e in events] \
        or ["  (none)"]


@click.command("show")
@click.argument("run", type=RUN)
@pass_service
@reports_errors
def show_command(service: RunService, run: str) -> None:
    """Everything about one run: fields, recipe, genotype, metrics, files, last events."""
    registry = open_registry(service)
    row = registry.get_run(run)
    lines = field_lines(run_fields(row, service.folder(row), registry.children(row.id), registry.worker_gone(row)))
    lines += ["", "recipe (resolved)"] + config_lines(row.config or {})
    found = service.genotype(row)
    if found.error:
        raise UserError(found.error)
    if found.genotype is None:
        lines += ["", "genotype", "  (none yet)"]
    else:
        lines += ["", f"genotype ({found.where})"] + ["  " + line for line in found.genotype.describe().splitlines()]
    lines += ["", "metrics"] + metric_lines(registry, row)
    lines += ["", "files"] + file_lines(service.folder(row))
    lines += ["", f"events (last {EVENTS_SHOWN})"] + event_lines(registry, row.id)
    click.echo("\n".join(map(printable, lines)))
    if row.corrupt:
        click.echo(f"warning: run {row.short_id}: {row.corrupt} (shown as missing)", err=True)


# -- metrics ---------------------------------------------------------------------------------------

SUMMARY_COLUMNS = ("key", "split", "count", "last", "min", "max")
SERIES_COLUMNS = ("step", "epoch", "split", "value")
PLOT_POINTS = 2000  # at most this many points per line


def metric_summary(rows: Iterable[dict]) -> list[dict]:
    """Per (key, split): how many values, the last, the smallest and the largest."""
    series: dict[tuple[str, str | None], dict] = {}
    for row in rows:
        entry = series.setdefault((row["key"], row["split"]), {
            "key": row["key"], "split": row["split"], "count": 0, "last": None, "min": row["value"],
            "max": row["value"]})
        entry["count"] += 1
        entry["last"] = row["value"]
        entry["min"] = min(entry["min"], row["value"])
        entry["max"] = max(entry["max"], row["value"])
    return [series[key] for key in sorted(series, key=lambda k: (k[0], k[1] or ""))]


def plot_series(rows: Sequence[dict], title: str, color: bool, size: tuple[int, int]) -> str:
    """One line per split, step on x, drawn by plotext as text."""
    import plotext as plt

    plt.clear_figure()
    splits: dict[str, list[dict]] = {}
    for row in rows:
        splits.setdefault(row["split"] or "-", []).append(row)
    for split, points in sorted(splits.items()):
        stride = -(-len(points) // PLOT_POINTS)  # a terminal shows a few hundred columns: thin long series
        points = points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])
        xs = [p["step"] if p["step"] is not None else i for i, p in enumerate(points)]
        plt.plot(xs, [p["value"] for p in points], label=split)
    plt.title(title)
    plt.xlabel("step")
    plt.limit_size(False, False)  # plotext caps a plot at the terminal's size, 80 columns in a pipe
    plt.plotsize(*size)
    if not color:
        plt.theme("clear")
    text = plt.build()
    plt.clear_figure()
    return text if color else plt.uncolorize(text)


@click.command("metrics")
@click.argument("run", type=RUN)
@click.option("--key", help="One metric's series (loss, epoch_loss, lr, f1_weighted, ...); without: a summary.")
@click.option("--split", help="Only this split (train, arch, dev, test).")
@click.option("--plot", is_flag=True, help="Draw the --key series in the terminal, one line per split.")
@output_options
@pass_service
@reports_errors
def metrics_command(service: RunService, run: str, key: str | None, split: str | None, plot: bool, as_json: bool,
                    as_csv: bool) -> None:
    """A run's metrics: a summary of every series, or one series as a table or a plot."""
    if plot and not key:
        raise click.UsageError("--plot draws one series: give --key (e.g. --key loss)")
    if plot and (as_json or as_csv):
        raise click.UsageError("--plot draws for people; leave out --json and --csv")
    registry = open_registry(service)
    row = registry.get_run(run)
    short, in_split = row.short_id, f" in split {split!r}" if split else ""
    rows = registry.metrics(row.id, key=key, split=split)
    if key is None:
        if not rows and not (as_json or as_csv):
            return click.echo(f"run {short} has logged no metrics{in_split}")
        return emit(metric_summary(rows), SUMMARY_COLUMNS, as_json, as_csv)
    if not rows:
        known = ", ".join(f"{k}/{s}" if s else k for k, s in registry.metric_keys(row.id)) or "none"
        raise UserError(f"run {short} has no metric {key!r}{in_split} (logged: {known})")
    series = [{"step": r["step"], "epoch": r["epoch"], "split": r["split"], "key": r["key"], "value": r["value"],
               "wall_time": r["wall_time"]} for r in rows]
    if plot:
        return _plot(series, f"{key} of run {row.short_id}")
    emit(series, SERIES_COLUMNS, as_json, as_csv)


def _plot(series: Sequence[dict], title: str) -> None:
    from importlib.util import find_spec

    try:
        available = find_spec("plotext") is not None
    except ValueError:  # a module set to None in sys.modules
        available = False
    if not available:
        click.echo("(plotext is not installed: pip install plotext; the series as a table instead)")
        return emit(series, SERIES_COLUMNS)
    tty = sys.stdout.isatty()
    columns, lines = shutil.get_terminal_size((100, 30)) if tty else (100, 30)
    click.echo(plot_series(series, title, color=tty, size=(min(columns, 160), max(12, min(lines - 2, 30)))))


# -- arch ------------------------------------------------------------------------------------------


def last_rows_per_epoch(rows: Iterable[dict]) -> dict[int, list[dict]]:
    """Per epoch, the weights logged last in it (a search may log an epoch's weights more than once)."""
    by_epoch: dict[int, list[dict]] = {}
    for row in rows:
        by_epoch.setdefault(row["epoch"], []).append(row)
    return {epoch: [r for r in group if r["step"] == group[-1]["step"]] for epoch, group in by_epoch.items()}


def distributions(rows: Iterable[dict]) -> dict[tuple, list[tuple[str, float]]]:
    """(kind, cell, step, slot) -> [(choice, weight), ...] in logged order."""
    groups: dict[tuple, list[tuple[str, float]]] = {}
    for row in rows:
        groups.setdefault((row["kind"], row["cell"], row["step_index"], row["slot"]), []).append(
            (row["choice"], row["weight"]))
    return groups


def argmax(weights: Sequence[tuple[str, float]]) -> str:
    return max(weights, key=lambda pair: pair[1])[0]  # first of equals wins, as derivation does


def slot_label(slot: int | None) -> str:
    return "" if slot is None else SLOT_NAMES[slot] if slot < len(SLOT_NAMES) else f"slot{slot}"


def group_label(kind: str, cell: int, step: int | None, slot: int | None) -> str:
    """cell0 input x, cell0 step0 input y, cell0 step0 op."""
    where = f"cell{cell}" if step is None else f"cell{cell} step{step}"
    return f"{where} op" if kind == "step_op" else f"{where} input {slot_label(slot)}"


def certainty_key(choice: ChoiceCertainty) -> tuple:
    """The (kind, cell, step, slot) key that `distributions` groups by."""
    return choice.kind, choice.cell, choice.step, choice.slot


def certainty_cells(choice: ChoiceCertainty) -> str:
    """The entropy and margin columns of one row (widths of `entropy` and `margin`)."""
    return f"  {choice.entropy:>7.3f}  {choice.margin * 100:>5.1f}%"


def weight_block(title: str, slots: Sequence[tuple[str, list[tuple[str, float]], ChoiceCertainty]]) -> list[str]:
    """A title row of candidate names, then one row of percentages per slot, the argmax marked `*`, its
    entropy and margin after it; a judged choice that is undecided says so in its label."""
    names = [choice for choice, _ in slots[0][1]]
    widths = [max(len(name), 6) for name in names]
    labels = [(label + " undecided").strip() if c.judged and not c.decided else label for label, _, c in slots]
    label_width = max(len(title), *(len(label) + 2 for label in labels))
    header = " ".join(f"{n:>{w}} " for n, w in zip(names, widths, strict=True))
    lines = [f"{title:<{label_width}}  " + header + " entropy  margin"]
    for label, (_, weights, certainty) in zip(labels, slots, strict=True):
        best = argmax(weights)
        cells = [f"{w * 100:.1f}%".rjust(width) + ("*" if choice == best else " ")
                 for (choice, w), width in zip(weights, widths, strict=True)]
        lines.append(f"{'  ' + label:<{label_width}}  " + " ".join(cells) + certainty_cells(certainty))
    return [line.rstrip() for line in lines]


def weight_lines(rows: Sequence[dict]) -> list[str]:
    """Cell by cell: its input slots, then per step the step's input slots and its op distribution."""
    from ssnas.nas.certainty import choice_certainties

    certainties = {certainty_key(c): c for c in choice_certainties(rows)}
    blocks: dict[tuple, list[tuple[str, list[tuple[str, float]], ChoiceCertainty]]] = {}
    for group, weights in distributions(rows).items():
        kind, cell, step, slot = group
        title = f"cell{cell} inputs" if kind == "cell_input" else \
            f"cell{cell} step{step} " + ("op" if kind == "step_op" else "inputs")
        blocks.setdefault((cell, title), []).append((slot_label(slot), weights, certainties[group]))
    lines: list[str] = []
    for (_, title), slots in blocks.items():
        lines += weight_block(title, slots)
    return lines


def certainty_by_epoch(per_epoch: dict[int, list[dict]]) -> dict[int, SearchCertainty]:
    """Per epoch, the summary over its judged choices: whether the weights are still moving."""
    from ssnas.nas.certainty import choice_certainties, summarize

    return {epoch: summarize(choice_certainties(rows)) for epoch, rows in per_epoch.items()}


def sampled_epochs(epochs: Sequence[int], most: int = PER_EPOCH_COLUMNS) -> list[int]:
    """At most `most` epochs spread evenly from the first to the last (all of them when few)."""
    if len(epochs) <= most:
        return list(epochs)
    return sorted({epochs[round(i * (len(epochs) - 1) / (most - 1))] for i in range(most)})


def certainty_rows(per_epoch: dict[int, list[dict]], epochs: Sequence[int]) -> list[dict]:
    """Two table rows over `epochs`: the mean entropy and the lowest top-1 ratio of the judged choices."""
    summaries = certainty_by_epoch({e: per_epoch[e] for e in epochs})
    return [{"": "mean entropy", **{str(e): f"{summaries[e].mean_entropy:.3f}" for e in epochs}},
            {"": "min top ratio", **{str(e): f"{summaries[e].min_top_ratio:.2f}x" for e in epochs}}]


def evolution_lines(per_epoch: dict[int, list[dict]]) -> list[str]:
    """The argmax of every (kind, cell, step, slot) through the epochs, then per epoch the mean entropy
    and the lowest top-1 ratio of the judged choices (do the weights still move?)."""
    epochs = sorted(per_epoch)
    choices: dict[tuple, dict[int, str]] = {}
    for epoch in epochs:
        for group, weights in distributions(per_epoch[epoch]).items():
            choices.setdefault(group, {})[epoch] = argmax(weights)
    labels = {group: group_label(*group) for group in choices}
    width = max(map(len, labels.values()))
    if len(epochs) <= PER_EPOCH_COLUMNS:
        rows = [{"": labels[g], **{str(e): by_epoch.get(e, "-") for e in epochs}} for g, by_epoch in choices.items()]
        rows += [dict.fromkeys(["", *map(str, epochs)], ""), *certainty_rows(per_epoch, epochs)]
        return table(rows, ["", *map(str, epochs)]).splitlines()
    lines = []
    for group, by_epoch in choices.items():
        runs: list[list] = []  # [choice, first epoch, last epoch]
        for epoch in epochs:
            choice = by_epoch.get(epoch, "-")
            if runs and runs[-1][0] == choice:
                runs[-1][2] = epoch
            else:
                runs.append([choice, epoch, epoch])
        spans = ", ".join(f"{c} e{a}" if a == b else f"{c} e{a}-{b}" for c, a, b in runs)
        lines.append(f"{labels[group]:<{width}}  {spans}")
    sampled = sampled_epochs(epochs)
    lines += ["", f"certainty at {len(sampled)} of {len(epochs)} epochs"]
    return lines + table(certainty_rows(per_epoch, sampled), ["", *map(str, sampled)]).splitlines()


@click.command("arch")
@click.argument("run", type=RUN)
@click.option("--epoch", type=int, help="The epoch to show (default: the last logged).")
@pass_service
@reports_errors
def arch_command(service: RunService, run: str, epoch: int | None) -> None:
    """A search's architecture weights at one epoch, argmax marked, with how sure each choice is and a
    verdict, and how the argmax and the certainty moved."""
    from ssnas.nas.certainty import DECIDED_RATIO

    registry = open_registry(service)
    row = registry.get_run(run)
    short = row.short_id
    per_epoch = last_rows_per_epoch(registry.arch_weights(row.id))
    if not per_epoch:
        raise UserError(f"run {short} has no architecture weights (a search logs them once per epoch)")
    epochs = sorted(per_epoch)
    if epoch is None:
        epoch = epochs[-1]
    elif epoch not in per_epoch:
        raise UserError(f"run {short} has no architecture weights for epoch {epoch} "
                        f"(epochs {epochs[0]}..{epochs[-1]})")
    lines = [f"architecture weights of run {short} at epoch {epoch} (logged: epochs {epochs[0]}..{epochs[-1]}; "
             "* = argmax)"]
    lines += textwrap.wrap(f"entropy: 1 = uniform; margin: top-1 - top-2; undecided: top-1 < {DECIDED_RATIO}x "
                           "uniform; step inputs not judged", ARCH_WIDTH, break_on_hyphens=False)
    lines += ["", *weight_lines(per_epoch[epoch])]
    lines += ["", "argmax by epoch"] + evolution_lines(per_epoch)
    verdict = certainty_by_epoch({epoch: per_epoch[epoch]})[epoch].verdict(f"epoch {epoch}")
    lines += ["", *textwrap.wrap(verdict, ARCH_WIDTH, subsequent_indent="  ", break_on_hyphens=False)]
    click.echo("\n".join(lines))


# -- diff ------------------------------------------------------------------------------------------


@click.command("diff")
@click.argument("run", type=RUN)
@click.argument("other", required=False, type=RUN)
@click.option("--baseline", help="A bundled genotype to compare with (ssnas baselines). "
                                 "Default when OTHER is absent: bmnas-mmimdb.")
@pass_service
@reports_errors
def diff_command(service: RunService, run: str, other: str | None, baseline: str | None) -> None:
    """A run's latest genotype against another run's or a bundled baseline: differing choices and similarity."""
    from ssnas.baselines import load_baseline
    from ssnas.nas.binding import bind_reference
    from ssnas.nas.genotype import diff

    if other and baseline:
        raise click.UsageError("compare with OTHER or with --baseline, not both")
    registry = open_registry(service)
    row = registry.get_run(run)
    genotype, where = require_genotype(service, row)
    label = row.short_id
    if other:
        other_row = registry.get_run(other)
        other_genotype, other_where = require_genotype(service, other_row)
        other_label, other_title = other_row.short_id, f"run {other_row.name} ({other_where})"
        if other_label == label and other_row.id != row.id:
            label, other_label = row.id, other_row.id
    else:
        baseline = baseline or "bmnas-mmimdb"
        other_genotype, other_label, other_title = load_baseline(baseline), baseline, "bundled baseline"
        # on the run's input nodes, as the run bound its genotype (through its run.genotype_nodes, if any)
        mapping = row.setting("run.genotype_nodes")
        bound = bind_reference(other_genotype, genotype.input_names, mapping)
        if bound is None:
            reads = ", ".join(other_genotype.used_input_names)
            other_title += f"; the run's data lacks input nodes it reads ({reads}), so those match nothing"
        else:
            if bound.used_input_names != other_genotype.used_input_names:
                other_title += f", on the run's input nodes ({', '.join(bound.used_input_names)})"
            other_genotype = bound
    click.echo(printable(f"{label}: run {row.name} ({where})"))
    click.echo(printable(f"{other_label}: {other_title}") + "\n")
    click.echo(diff(genotype, other_genotype).render(label, other_label))


# -- compare ---------------------------------------------------------------------------------------


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=RUN)
@click.option("--json", "as_json", is_flag=True, help="JSON for programs: raw values, full ids.")
@pass_service
@reports_errors
def compare_command(service: RunService, runs: tuple[str, ...], as_json: bool) -> None:
    """Runs side by side: differing config values, final metrics, status, duration, genotype similarity."""
    from ssnas.runs.compare import CONFIG_COLUMN

    if len(runs) < 2:
        raise click.UsageError("compare needs at least two runs")
    comparison = service.compare(runs)
    if as_json:
        return click.echo(json.dumps(comparison.to_dict(), indent=2))
    click.echo(table(comparison.summary, ["", *comparison.labels]))
    click.echo("")
    if comparison.config:
        click.echo(table(comparison.config, [CONFIG_COLUMN, *comparison.labels]))
    else:
        stages = list(dict.fromkeys(run.stage for run in comparison.runs))
        of_stages = f"; they run different stages of it ({', '.join(stages)})" if len(stages) > 1 else ""
        click.echo(f"config: the same recipe in every run{of_stages}")


# -- export ----------------------------------------------------------------------------------------

@click.command("export")
@click.argument("runs", nargs=-1, type=RUN, metavar="[RUN]...")
@click.option("--to", "target", type=click.Path(file_okay=False),
              help="The folder to write one run into (default: ./export/RUN_ID); it must be empty or new.")
@click.option("--force", is_flag=True, help="Replace an earlier export in that folder (nothing else is removed).")
@click.option("--mlflow", "mlflow_target", metavar="DIR",
              help="Write the runs into the MLflow store DIR (made if new; or a tracking URI): params, metrics, "
                   "tags, artifacts. Needs pip install 'ssnas[mlflow]'.")
@click.option("--where", metavar="EXPR", help="With --mlflow and no RUN: the runs this filter selects.")
@click.option("--group", help="With --mlflow and no RUN: the runs of this group.")
@click.option("--experiment", help="With --mlflow: the MLflow experiment to write into (default: ssnas).")
@pass_service
@reports_errors
def export_command(service: RunService, runs: tuple[str, ...], target: str | None, force: bool,
                   mlflow_target: str | None, where: str | None, group: str | None, experiment: str | None) -> None:
    """Write a run's genotype, metrics and resolved recipe to a folder, for papers and other tools; or runs
    into an MLflow store (--mlflow), every run without RUN, --where or --group."""
    if mlflow_target is None:
        if where or group or experiment:
            raise click.UsageError("--where, --group and --experiment choose what --mlflow writes")
        if len(runs) != 1:
            raise click.UsageError("a folder export takes one RUN (--mlflow takes several)")
        lines = service.export(runs[0], Path(target) if target else None, force=force)
    else:
        if target or force:
            raise click.UsageError("--to and --force are for a folder export, not --mlflow")
        if runs and (where or group):
            raise click.UsageError("name runs or select them with --where/--group, not both")
        lines = service.export_mlflow(mlflow_target, runs, where=where, group=group, experiment=experiment)
    for line in lines:
        click.echo(printable(line))
