"""The paper's comparison from the registry: per arm and label ratio, test F1, architecture and search cost.

A report covers a group of runs (one `ssnas run` of a recipe with arms and a sweep, e.g.
recipes/paper_synthetic.toml) or every run with a tag. Each *chain* (search -> pretrain -> finetune,
or a shorter one) ends in a finetune run; the report reads, per chain:

- its arm: the `arm:NAME` tag every run of an arm carries (without one: the run's objective column),
  and its label ratio r: the finetune run's `label_ratio`;
- test F1 weighted and macro: the last test values the finetune run logged (finished runs only);
- its genotype: `genotype.json` in the finetune run's folder (or an earlier stage's; or the search's
  last logged genotype), scored by `diff(genotype, baseline).similarity` to BM-NAS's MM-IMDB
  genotype (bound to the chain's input nodes, through its run.genotype_nodes if any; no score where
  the data lacks nodes the baseline reads) and, on the synthetic dataset, the only one with a planted
  architecture, by recovery of the planted input nodes. A column that means nothing for the data is
  left out, with a note saying why;
- search cost: the search run's wall time (ended_at - started_at, finished searches only) and device.

Rows aggregate chains by (arm, r): mean and sample standard deviation over seeds. Chains that did not
finish are counted by status, never dropped silently. Nothing here imports torch (a reader, DESIGN.md
3); matplotlib and plotext are imported only by the plotting methods.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssnas.data.nodes import SYNTHETIC_MODALITIES, node_name
from ssnas.errors import GenotypeError, RegistryError
from ssnas.recipe import arm_of

if TYPE_CHECKING:
    from ssnas.nas.genotype import Genotype
    from ssnas.registry import Registry

BASELINE = "bmnas-mmimdb"
GENOTYPE_FILE = "genotype.json"  # what ssnas.execution leaves in a run's folder (it imports torch)
TERMINAL_MARKERS = ("o", "+", "x", "*", "#", "@", "%", "=")  # one per arm: tells lines apart without color


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (None below two values) of n values."""

    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat | None:
        if not values:
            return None
        std = statistics.stdev(values) if len(values) > 1 else None
        return cls(statistics.fmean(values), std, len(values))


@dataclass(frozen=True)
class Chain:
    """One chain of stage runs, known by its finetune run."""

    finetune_id: str
    name: str
    arm: str
    label_ratio: float | None
    seed: int | None
    status: str  # the finetune run's
    f1_weighted: float | None  # test, finished runs only
    f1_macro: float | None
    search_id: str | None
    search_status: str | None
    search_seconds: float | None  # finished searches only
    device: str | None  # the search's, else the finetune's
    genotype: str | None  # one line
    similarity: float | None  # to the baseline
    recovery: float | None  # of the planted nodes (synthetic dataset only)
    lacks_baseline: bool  # its data lacks input nodes the baseline reads: no similarity


@dataclass(frozen=True)
class Row:
    """The chains of one arm at one label ratio."""

    arm: str
    label_ratio: float | None
    chains: int
    statuses: dict[str, int]  # finetune status -> chains
    f1_weighted: Stat | None
    f1_macro: Stat | None
    similarity: Stat | None
    recovery: Stat | None
    search_seconds: Stat | None
    devices: tuple[str, ...]

    @property
    def finished(self) -> int:
        return self.statuses.get("finished", 0)


@dataclass(frozen=True)
class ArmSummary:
    """One arm over every label ratio: how its architectures compare and what its search cost."""

    arm: str
    chains: int
    statuses: dict[str, int]
    similarity: Stat | None
    recovery: Stat | None
    search_seconds: Stat | None
    devices: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    """A group's (or a tag's) chains, aggregated per arm and label ratio (rows) and per arm (arms)."""

    selection: str  # what the user asked for
    kind: str  # "group" or "tag"
    groups: tuple[str, ...]
    datasets: tuple[str, ...]
    baseline: str
    baseline_nodes: tuple[str, ...]  # the input nodes the baseline reads
    statuses: dict[str, int]  # every run selected (all stages), by status
    rows: tuple[Row, ...]
    arms: tuple[ArmSummary, ...]
    chains: tuple[Chain, ...]

    @property
    def title(self) -> str:
        if self.kind == "tag":
            return f"tag {self.selection}"
        return f"group {self.groups[0]}"

    @property
    def has_similarity(self) -> bool:
        """False when no chain is scored because the data lacks input nodes the baseline reads."""
        return any(c.similarity is not None for c in self.chains) or not any(c.lacks_baseline for c in self.chains)

    @property
    def has_recovery(self) -> bool:
        """Only the synthetic dataset has a planted architecture to recover."""
        return "synthetic" in self.datasets

    def to_json(self) -> dict[str, Any]:
        """Everything, as plain JSON-able data (NaN-free)."""
        return asdict(self) | {"title": self.title}

    def format_table(self) -> str:
        """Two aligned tables for people: per arm and r, then per arm."""
        return "\n".join([self._header(), "", _aligned(*self._cell_table(plus_minus="+-")), "",
                          _aligned(*self._arm_table()), "", *self._footer("+-")])

    def format_markdown(self) -> str:
        """The same two tables in GitHub markdown."""
        return "\n".join([f"### {self._header()}", "", _markdown(*self._cell_table(plus_minus="±")), "",
                          _markdown(*self._arm_table()), "", *(f"- {line}" for line in self._footer("±"))]) + "\n"

    def plot_png(self, path: str | Path) -> Path:
        """Test F1 (weighted, mean +- std over seeds) against r per arm, log x axis, as a PNG (matplotlib, Agg)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import NullFormatter

        path = Path(path)
        figure = Figure(figsize=(7, 4.5), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for arm, points in self._series():
            axes.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] for p in points],
                          marker="o", capsize=3, label=arm)
        ratios = sorted({r.label_ratio for r in self.rows if r.label_ratio and r.f1_weighted})
        axes.set_xscale("log")
        if ratios:
            axes.set_xticks(ratios, [f"{r:g}" for r in ratios])
            axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set_xlabel("label ratio r (fraction of training labels, log scale)")
        axes.set_ylabel("test F1 (weighted)")
        axes.set_title(f"{self.title}: test F1 against label ratio")
        axes.grid(True, alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(title="arm")
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=150)
        return path

    def plot_terminal(self, width: int = 100, height: int = 25, color: bool = False) -> str:
        """The same plot as text, drawn by plotext."""
        import plotext as plt

        plt.clear_figure()
        for (arm, points), marker in zip(self._series(), itertools.cycle(TERMINAL_MARKERS)):
            plt.plot([p[0] for p in points], [p[1] for p in points], label=arm, marker=marker)
        plt.xscale("log")
        ratios = sorted({r.label_ratio for r in self.rows if r.label_ratio and r.f1_weighted})
        if ratios:
            plt.xticks(ratios, [f"{r:g}" for r in ratios])
        plt.title(f"{self.title}: test F1 (weighted) against label ratio")
        plt.xlabel("label ratio r (log)")
        plt.plotsize(width, height)
        if not color:
            plt.theme("clear")
        text = plt.build()
        plt.clear_figure()
        return text if color else plt.uncolorize(text)

    # -- pieces

    def _series(self) -> list[tuple[str, list[tuple[float, float, float]]]]:
        """Per arm, (r, mean F1, std or 0) at every r that has a finished run."""
        series: dict[str, list[tuple[float, float, float]]] = {}
        for row in self.rows:
            if row.f1_weighted is not None and row.label_ratio:
                series.setdefault(row.arm, []).append(
                    (row.label_ratio, row.f1_weighted.mean, row.f1_weighted.std or 0.0))
        return list(series.items())

    def _header(self) -> str:
        datasets = ", ".join(self.datasets) or "-"
        return f"{self.title}: {len(self.chains)} chains on {datasets}"

    def _footer(self, plus_minus: str) -> list[str]:
        runs = sum(self.statuses.values())
        lines = [f"runs: {runs} ({_status_text(self.statuses)}); groups: {', '.join(self.groups)}",
                 f"F1: test split, epoch and threshold chosen on dev; mean {plus_minus} sample std over seeds "
                 "(n: finished / chains)"]
        lacking = f"the data lacks input nodes {self.baseline} reads ({', '.join(self.baseline_nodes)})"
        if not self.has_similarity:
            lines.append(f"similarity to {self.baseline}: left out, {lacking}")
        else:
            lines.append(f"similarity: diff(genotype, {self.baseline}).similarity, mean over chains with a genotype")
            if any(c.lacks_baseline for c in self.chains):
                lines.append(f"similarity: '-' for chains where {lacking}")
        if self.has_recovery:
            lines.append("recovery: Jaccard of the fused input nodes and the planted ones (synthetic data)")
        else:
            lines.append(f"planted recovery: left out, {', '.join(self.datasets) or 'this'} data has no planted "
                         "architecture (only synthetic data has one)")
        lines.append("search: wall time of a finished search run, mean")
        return lines

    def _cell_table(self, plus_minus: str) -> tuple[list[str], list[list[str]]]:
        columns = ["arm", "r", "n", "F1 weighted", "F1 macro"]
        columns += ["similarity"] if self.has_similarity else []
        columns += ["recovery"] if self.has_recovery else []
        columns += ["search", "not finished"]
        rows = []
        for row in self.rows:
            cells = [row.arm, "-" if row.label_ratio is None else str(row.label_ratio), f"{row.finished}/{row.chains}",
                     _stat(row.f1_weighted, plus_minus), _stat(row.f1_macro, plus_minus)]
            cells += [_mean(row.similarity, ".2f")] if self.has_similarity else []
            cells += [_mean(row.recovery, ".2f")] if self.has_recovery else []
            cells += [_seconds(row.search_seconds), _status_text(row.statuses, leave_out="finished") or "-"]
            rows.append(cells)
        return columns, rows

    def _arm_table(self) -> tuple[list[str], list[list[str]]]:
        columns = ["arm", "chains"]
        columns += [f"similarity to {self.baseline}"] if self.has_similarity else []
        columns += ["planted recovery"] if self.has_recovery else []
        columns += ["search (mean)", "searches", "device", "not finished"]
        rows = []
        for arm in self.arms:
            cells = [arm.arm, str(arm.chains)]
            cells += [_mean(arm.similarity, ".2f")] if self.has_similarity else []
            cells += [_mean(arm.recovery, ".2f")] if self.has_recovery else []
            cells += [_seconds(arm.search_seconds), str(arm.search_seconds.n if arm.search_seconds else 0),
                      ", ".join(arm.devices) or "-", _status_text(arm.statuses, leave_out="finished") or "-"]
            rows.append(cells)
        return columns, rows


# -- building --------------------------------------------------------------------------------------


def build_report(registry: Registry, group_or_tag: str, baseline: str = BASELINE) -> Report:
    """The report of a group (its id or a unique prefix) or, when no group matches, of a tag."""
    from ssnas.baselines import load_baseline

    kind, runs = select_runs(registry, group_or_tag)
    reference = load_baseline(baseline)
    by_id = {run["id"]: run for run in runs}
    finetunes = [run for run in runs if run["stage"] == "finetune"]
    if not finetunes:
        raise RegistryError(f"{kind} {group_or_tag!r} has no finetune runs to report "
                            f"({len(runs)} run(s): {_status_text(Counter(r['status'] for r in runs))})")
    chains = [_chain(registry, run, by_id, reference) for run in finetunes]
    arms = list(dict.fromkeys(chain.arm for chain in chains))
    return Report(
        selection=group_or_tag, kind=kind,
        groups=tuple(dict.fromkeys(run["group_id"] for run in runs if run["group_id"])),
        datasets=tuple(sorted({run["dataset"] for run in runs if run["dataset"]})),
        baseline=baseline,
        baseline_nodes=reference.used_input_names,
        statuses=dict(Counter(run["status"] for run in runs)),
        rows=tuple(_rows(chains, arms)),
        arms=tuple(_arm_summary(arm, [c for c in chains if c.arm == arm]) for arm in arms),
        chains=tuple(chains),
    )


def select_runs(registry: Registry, group_or_tag: str) -> tuple[str, list[dict]]:
    """("group" or "tag", the runs oldest first): an exact group id, a unique group-id prefix, or a tag."""
    wanted = group_or_tag.strip()
    if not wanted:
        raise RegistryError("no group or tag given")
    runs = registry.runs(group=wanted, sort="created_at", config=True)
    if runs:
        return "group", runs
    quoted = wanted.replace("'", "''")
    prefixed = registry.runs(where=f"group_id >= '{quoted}' AND group_id < '{quoted}\uffff'", sort="created_at",
                             config=True)
    groups = list(dict.fromkeys(run["group_id"] for run in prefixed))
    if len(groups) > 1:
        shown = ", ".join(groups[:5]) + (", ..." if len(groups) > 5 else "")
        raise RegistryError(f"{wanted!r} matches {len(groups)} groups: {shown}")
    if groups:
        return "group", prefixed
    runs = registry.runs(tag=wanted, sort="created_at", config=True)
    if runs:
        return "tag", runs
    raise RegistryError(f"no group or tag matches {wanted!r} in {registry.path}")


def _chain(registry: Registry, finetune: dict, by_id: dict[str, dict], reference: Genotype) -> Chain:
    from ssnas.nas.binding import bind_reference
    from ssnas.nas.genotype import diff

    members = _ancestors(registry, finetune, by_id)  # finetune first
    search = next((run for run in members if run["stage"] == "search"), None)
    finished = finetune["status"] == "finished"
    test = _last_values(registry.metrics(finetune["id"], split="test")) if finished else {}
    genotype = _genotype(registry, members, search)
    planted = _planted_nodes(finetune.get("config") or {})
    mapping = ((finetune.get("config") or {}).get("run") or {}).get("genotype_nodes")
    bound = bind_reference(reference, genotype.input_names, mapping) if genotype else None
    seconds = None
    if search is not None and search["status"] == "finished" and search["started_at"] and search["ended_at"]:
        seconds = search["ended_at"] - search["started_at"]
    device = (search or finetune).get("device")
    return Chain(
        finetune_id=finetune["id"], name=finetune["name"],
        arm=arm_of(finetune["tags"]) or finetune["objective"] or "-",
        label_ratio=finetune["label_ratio"], seed=finetune["seed"], status=finetune["status"],
        f1_weighted=test.get("f1_weighted"), f1_macro=test.get("f1_macro"),
        search_id=search["id"] if search else None, search_status=search["status"] if search else None,
        search_seconds=seconds, device=device if device and device != "starting" else None,
        genotype=genotype.describe().replace("\n", "; ") if genotype else None,
        similarity=diff(genotype, bound).similarity if genotype and bound else None,
        recovery=planted_recovery(used_input_nodes(genotype), planted) if genotype and planted else None,
        lacks_baseline=genotype is not None and bound is None,
    )


def _ancestors(registry: Registry, run: dict, by_id: dict[str, dict]) -> list[dict]:
    """The run and its parents up to the chain's first stage."""
    chain = [run]
    seen = {run["id"]}
    while chain[-1]["parent_id"] and chain[-1]["parent_id"] not in seen:
        parent_id = chain[-1]["parent_id"]
        try:
            parent = by_id.get(parent_id) or registry.get_run(parent_id)
        except RegistryError:  # deleted
            break
        chain.append(parent)
        seen.add(parent_id)
    return chain


def _genotype(registry: Registry, members: Sequence[dict], search: dict | None) -> Genotype | None:
    """The genotype the chain trained: from the first folder (finetune first) that has one, else the search's log."""
    from ssnas.nas.genotype import Genotype

    for run in members:
        path = _run_dir(registry, run) / GENOTYPE_FILE
        if path.is_file():
            try:
                return Genotype.load(path)
            except GenotypeError:
                continue
    row = registry.latest_genotype(search["id"]) if search is not None else None
    if row is not None:
        try:
            return Genotype.from_json(row["genotype"], where=f"run {search['id']}")
        except GenotypeError:
            return None
    return None


def _run_dir(registry: Registry, run: dict) -> Path:
    if run.get("run_dir") and Path(run["run_dir"]).is_dir():
        return Path(run["run_dir"])
    return registry.path.parent / run["id"]


def _planted_nodes(config: dict) -> tuple[str, str] | None:
    """The synthetic dataset's planted nodes (as SyntheticConfig.planted_nodes names them); None for other data."""
    data = config.get("data") or {}
    synthetic = data.get("synthetic")
    if data.get("dataset") != "synthetic" or not synthetic:
        return None
    image, text = SYNTHETIC_MODALITIES
    return (node_name(image, synthetic["planted_image"]), node_name(text, synthetic["planted_text"]))


def used_input_nodes(genotype: Genotype) -> set[str]:
    """The input nodes a genotype's cells fuse."""
    return set(genotype.used_input_names)


def planted_recovery(input_nodes_used: set[str], planted: Iterable[str]) -> float:
    """Jaccard overlap of fused and planted input nodes (mirrors ssnas.data.synthetic.planted_recovery)."""
    planted_set = set(planted)
    union = input_nodes_used | planted_set
    return len(input_nodes_used & planted_set) / len(union) if union else 1.0


def _last_values(rows: Iterable[dict]) -> dict[str, float]:
    values: dict[str, float] = {}
    for row in rows:
        values[row["key"]] = row["value"]
    return values


def _rows(chains: Sequence[Chain], arms: Sequence[str]) -> list[Row]:
    cells: dict[tuple[str, float | None], list[Chain]] = {}
    for chain in chains:
        cells.setdefault((chain.arm, chain.label_ratio), []).append(chain)
    order = sorted(cells, key=lambda key: (arms.index(key[0]), math.inf if key[1] is None else key[1]))
    rows = []
    for arm, ratio in order:
        members = cells[(arm, ratio)]
        done = [c for c in members if c.f1_weighted is not None]
        rows.append(Row(
            arm=arm, label_ratio=ratio, chains=len(members), statuses=_statuses(members),
            f1_weighted=Stat.of([c.f1_weighted for c in done]),
            f1_macro=Stat.of([c.f1_macro for c in done if c.f1_macro is not None]),
            similarity=Stat.of([c.similarity for c in members if c.similarity is not None]),
            recovery=Stat.of([c.recovery for c in members if c.recovery is not None]),
            search_seconds=Stat.of([c.search_seconds for c in members if c.search_seconds is not None]),
            devices=_devices(members),
        ))
    return rows


def _arm_summary(arm: str, chains: Sequence[Chain]) -> ArmSummary:
    searches = {c.search_id: c.search_seconds for c in chains if c.search_seconds is not None}
    return ArmSummary(
        arm=arm, chains=len(chains), statuses=_statuses(chains),
        similarity=Stat.of([c.similarity for c in chains if c.similarity is not None]),
        recovery=Stat.of([c.recovery for c in chains if c.recovery is not None]),
        search_seconds=Stat.of(list(searches.values())),
        devices=_devices(chains),
    )


def _statuses(chains: Sequence[Chain]) -> dict[str, int]:
    """Finetune statuses, finished first; a finished run that logged no test F1 counts as 'no F1'."""
    counts = Counter("no F1" if c.status == "finished" and c.f1_weighted is None else c.status for c in chains)
    return dict(sorted(counts.items(), key=lambda item: (item[0] != "finished", item[0])))


def _devices(chains: Sequence[Chain]) -> tuple[str, ...]:
    return tuple(sorted({c.device for c in chains if c.device}))


# -- formatting ------------------------------------------------------------------------------------


def _stat(stat: Stat | None, plus_minus: str) -> str:
    if stat is None:
        return "-"
    return f"{stat.mean:.4f}" if stat.std is None else f"{stat.mean:.4f} {plus_minus} {stat.std:.4f}"


def _mean(stat: Stat | None, fmt: str) -> str:
    return "-" if stat is None else format(stat.mean, fmt)


def _seconds(stat: Stat | None) -> str:
    if stat is None:
        return "-"
    seconds = int(round(stat.mean))
    if seconds < 60:
        return f"{stat.mean:.1f}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _status_text(counts: dict[str, int] | Counter, leave_out: str | None = None) -> str:
    return ", ".join(f"{n} {status}" for status, n in counts.items() if status != leave_out)


def _aligned(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def _markdown(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(columns), "|" + "|".join(" --- " for _ in columns) + "|", *(line(row) for row in rows)])
