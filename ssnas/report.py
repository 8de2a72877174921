"""The paper's comparison from the registry: per arm and label ratio, test F1, architecture and search cost.

A report covers a group of runs (one `ssnas run` of a recipe with arms and a sweep, e.g.
recipes/paper_synthetic.toml) or every run with a tag. Each *chain* (search -> pretrain -> finetune,
or a shorter one) ends in a finetune run; the report reads, per chain:

- its arm: the `arm:NAME` tag every run of an arm carries (without one: the run's objective column),
  its label ratio r: the finetune run's `label_ratio`, and its kind: "baseline" for a no-search
  baseline (`finetune.model` linear, mlp or late_fusion: no genotype), "nas" for a genotype's network;
- test F1 weighted and macro: the last test values the finetune run logged (finished runs only), and
  from its `results.json` the fine-tune mode chosen on dev (probe / full) and its steps;
- its genotype: `genotype.json` in the finetune run's folder (or an earlier stage's; or the search's
  last logged genotype), scored by `diff(genotype, baseline).similarity` to BM-NAS's MM-IMDB
  genotype (bound to the chain's input nodes, through its run.genotype_nodes if any; no score where
  the data lacks nodes the baseline reads) and, on the synthetic dataset, the only one with a planted
  architecture, by recovery of the planted input nodes. A column that means nothing for the data is
  left out, with a note saying why;
- search cost: the search run's wall time (every attempt of it, `ssnas.runs.format.elapsed_seconds`;
  finished searches only) and device;
  how sure the search ended: the last `arch_top_ratio` and `arch_entropy` it logged (split "arch").

Rows aggregate chains by (arm, r): mean and sample standard deviation over seeds, the gap to the best
no-search baseline at that r (DESIGN.md 10: every arm is judged against them), how much the seeds'
genotypes agree, and how many searches decided. Then `ssl` - `random` (PAIRED) per r, paired by seed
with a t interval: what the search adds over a random genotype trained the same way. Chains that did
not finish are counted by status, never dropped silently. Nothing here imports torch (a reader,
DESIGN.md 3); matplotlib and plotext are imported only by the plotting methods.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssnas.data.nodes import SYNTHETIC_MODALITIES, node_name
from ssnas.errors import GenotypeError, RegistryError
from ssnas.nas.certainty import DECIDED_RATIO
from ssnas.recipe import arm_of
from ssnas.runs.format import elapsed_seconds, last_values, printable
from ssnas.runs.lookup import run_folder, test_scores
from ssnas.tune.summary import StudySummary, study_of_tag, study_summary

if TYPE_CHECKING:
    from ssnas.nas.genotype import Genotype
    from ssnas.registry import Registry
    from ssnas.run_record import Run

BASELINE = "bmnas-mmimdb"
GENOTYPE_FILE = "genotype.json"  # what ssnas.execution leaves in a run's folder (it imports torch)
RESULTS_FILE = "results.json"  # ditto, a finetune run's summary: test F1, mode, steps, model
TERMINAL_MARKERS = ("o", "+", "x", "*", "#", "@", "%", "=")  # one per arm: tells lines apart without color
PAIRED = ("ssl", "random")  # search vs random genotypes under the same protocol: what the search adds
# Two-sided 95 % quantiles of Student's t, t.ppf(0.975, df) for df = 1..30 (scipy.stats.t.ppf; checked against
# mpmath's t distribution), to 4 decimals. Above 30 degrees of freedom the normal's 1.96.
T_975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
         2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
         2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)
Z_975 = 1.96


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
class Decisiveness:
    """How sure an arm's finished searches ended: an undecided search's genotype is close to a coin toss, so a
    table of its F1 must say so (ssnas.nas.certainty)."""

    searches: int  # finished searches that logged arch_top_ratio
    decided: int  # of them, those whose lowest top-1 weight is >= DECIDED_RATIO x uniform
    top_ratio: float  # their final arch_top_ratio, mean
    entropy: float | None  # their final arch_entropy (1 = uniform), mean

    @classmethod
    def of(cls, chains: Iterable[Chain]) -> Decisiveness | None:
        """Over the chains' distinct searches (several chains may share one)."""
        finals = {c.search_id: (c.arch_top_ratio, c.arch_entropy) for c in chains if c.arch_top_ratio is not None}
        if not finals:
            return None
        ratios = [ratio for ratio, _ in finals.values()]
        entropies = [entropy for _, entropy in finals.values() if entropy is not None]
        return cls(len(ratios), sum(ratio >= DECIDED_RATIO for ratio in ratios), statistics.fmean(ratios),
                   statistics.fmean(entropies) if entropies else None)

    def __str__(self) -> str:
        return f"{self.decided}/{self.searches} ({self.top_ratio:.1f}x)"


@dataclass(frozen=True)
class Chain:
    """One chain of stage runs, known by its finetune run."""

    finetune_id: str
    name: str
    arm: str
    kind: str  # "nas" (a genotype's network) or "baseline" (no search, no genotype)
    model: str  # finetune.model: "nas", "linear", "mlp" or "late_fusion"
    label_ratio: float | None
    seed: int | None
    status: str  # the finetune run's
    f1_weighted: float | None  # test, finished runs only
    f1_macro: float | None
    mode: str | None  # "probe" or "full", chosen on dev (results.json)
    steps: int | None  # the chosen mode's optimizer steps (results.json)
    search_id: str | None
    search_status: str | None
    search_seconds: float | None  # finished searches only
    arch_top_ratio: float | None  # the finished search's last logged lowest top-1 weight / uniform
    arch_entropy: float | None  # and mean normalized entropy (1 = uniform)
    device: str | None  # the search's, else the finetune's
    genotype: str | None  # one line
    similarity: float | None  # to the baseline
    recovery: float | None  # of the planted nodes (synthetic dataset only)
    lacks_baseline: bool  # its data lacks input nodes the baseline reads: no similarity


@dataclass(frozen=True)
class Row:
    """The chains of one arm at one label ratio."""

    arm: str
    kind: str  # "nas" or "baseline"
    label_ratio: float | None
    chains: int
    statuses: dict[str, int]  # finetune status -> chains
    f1_weighted: Stat | None
    f1_macro: Stat | None
    gap: float | None  # F1 weighted mean minus the best baseline's at this r, in points (x 100)
    similarity: Stat | None
    recovery: Stat | None
    agreement: Stat | None  # diff similarity over pairs of seeds' genotypes (n: pairs)
    decided: Decisiveness | None
    search_seconds: Stat | None
    devices: tuple[str, ...]

    @property
    def finished(self) -> int:
        return self.statuses.get("finished", 0)


@dataclass(frozen=True)
class ArmSummary:
    """One arm over every label ratio: how its architectures compare and what its search cost."""

    arm: str
    kind: str
    chains: int
    statuses: dict[str, int]
    similarity: Stat | None
    recovery: Stat | None
    decided: Decisiveness | None
    search_seconds: Stat | None
    devices: tuple[str, ...]


@dataclass(frozen=True)
class BestBaseline:
    """The no-search baseline arm with the highest mean test F1 weighted at one r: what every gap is taken to."""

    label_ratio: float | None
    arm: str
    f1_weighted: float


@dataclass(frozen=True)
class PairedDifference:
    """Arm a minus arm b (PAIRED) at one r, over the seeds where both chains finished: pairing by seed removes
    what a seed does to both (the labeled subset, the initialization), which a few seeds would not average out."""

    label_ratio: float | None
    seeds: tuple[int, ...]
    pairs: int
    mean: float | None  # test F1 weighted, in points (x 100)
    low: float | None  # 95 % confidence interval (Student's t, pairs - 1 df); None below two pairs
    high: float | None
    verdict: str  # "better", "worse", "no difference shown" or "too few pairs"


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
    best_baselines: tuple[BestBaseline, ...]  # per r with a finished baseline
    paired_arms: tuple[str, str]  # (a, b): a - b paired by seed
    paired: tuple[PairedDifference, ...]  # per r; empty when either arm is missing
    chains: tuple[Chain, ...]
    search_seconds: Stat | None  # every distinct finished search once (n: searches), however many chains share it
    study: StudySummary | None = None  # the trials of an `ssnas tune` study, for its tag study:NAME

    @property
    def title(self) -> str:
        if self.kind == "tag":
            return f"tag {self.selection}"
        return f"group {self.groups[0]}"

    @property
    def has_nas(self) -> bool:
        """Without a genotype's network (only no-search baselines) no architecture column means anything."""
        return any(row.kind == "nas" for row in self.rows)

    @property
    def has_similarity(self) -> bool:
        """False when no chain is scored because the data lacks input nodes the baseline reads."""
        scored = any(c.similarity is not None for c in self.chains) or not any(c.lacks_baseline for c in self.chains)
        return self.has_nas and scored

    @property
    def has_recovery(self) -> bool:
        """Only the synthetic dataset has a planted architecture to recover."""
        return self.has_nas and "synthetic" in self.datasets

    @property
    def has_baselines(self) -> bool:
        """Without a no-search baseline arm there is nothing to take a gap to."""
        return any(arm.kind == "baseline" for arm in self.arms)

    @property
    def paired_missing(self) -> tuple[str, ...]:
        """The PAIRED arms this selection lacks."""
        present = {arm.arm for arm in self.arms}
        return tuple(arm for arm in self.paired_arms if arm not in present)

    def to_json(self) -> dict[str, Any]:
        """Everything, as plain JSON-able data (NaN-free)."""
        return asdict(self) | {"title": self.title}

    def format_table(self) -> str:
        """Aligned tables for people: F1 per arm and r, architectures and search per arm and r, per arm, and
        the paired ssl - random differences; then notes on what each column means or why it is left out."""
        parts = [printable(self._header())]
        for title, columns, rows in self._sections(plus_minus="+-"):
            parts += ["", title, _aligned(columns, rows)]
        return "\n".join([*parts, "", *map(printable, self._footer("+-"))])

    def format_markdown(self) -> str:
        """The same tables in GitHub markdown."""
        parts = [f"### {printable(self._header())}"]
        for title, columns, rows in self._sections(plus_minus="±"):
            parts += ["", f"#### {title}", "", _markdown(columns, rows)]
        return "\n".join([*parts, "", *(f"- {printable(line)}" for line in self._footer("±"))]) + "\n"

    def plot_png(self, path: str | Path) -> Path:
        """Test F1 (weighted, mean +- std over seeds) against r per arm, log x axis, as a PNG (matplotlib, Agg);
        no-search baselines dashed."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import NullFormatter

        path = Path(path)
        figure = Figure(figsize=(7, 4.5), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for arm, points in self._series():
            baseline = self._is_baseline(arm)
            axes.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] for p in points],
                          marker="o", capsize=3, linestyle="--" if baseline else "-", label=self._legend(arm))
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
            plt.plot([p[0] for p in points], [p[1] for p in points], label=self._legend(arm), marker=marker)
        plt.xscale("log")
        ratios = sorted({r.label_ratio for r in self.rows if r.label_ratio and r.f1_weighted})
        if ratios:
            plt.xticks(ratios, [f"{r:g}" for r in ratios])
        plt.title(f"{self.title}: test F1 (weighted) against label ratio")
        plt.xlabel("label ratio r (log)")
        plt.limit_size(False, False)  # plotext caps a plot at the terminal's size, 80 columns in a pipe
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

    def _is_baseline(self, arm: str) -> bool:
        return any(summary.arm == arm and summary.kind == "baseline" for summary in self.arms)

    def _legend(self, arm: str) -> str:
        return printable(f"{arm} (no search)" if self._is_baseline(arm) else arm)

    def _header(self) -> str:
        datasets = ", ".join(self.datasets) or "-"
        return f"{self.title}: {len(self.chains)} chains on {datasets}"

    def _sections(self, plus_minus: str) -> list[tuple[str, list[str], list[list[str]]]]:
        """(title, columns, rows) per table. Search columns have their own table: beside F1 they make a line
        too wide for a terminal, and they mean nothing for the no-search baselines."""
        sections = [("test F1 by arm and label ratio", *self._f1_table(plus_minus))]
        if self.has_nas:
            sections.append(("architectures and search by arm and label ratio", *self._search_table()))
        sections.append(("by arm", *self._arm_table()))
        if self.paired:
            sections.append((f"{' - '.join(self.paired_arms)} (paired by seed)", *self._paired_table()))
        if self.study is not None:
            sections.append((f"study {self.study.name}: trials", self.study.columns(), self.study.cells()))
        return sections

    def _f1_table(self, plus_minus: str) -> tuple[list[str], list[list[str]]]:
        columns = ["arm", "kind", "r", "n", "F1 weighted", "F1 macro"]
        columns += ["gap"] if self.has_baselines else []
        columns += ["not finished"]
        rows = []
        for row in self.rows:
            cells = [row.arm, row.kind, _ratio(row.label_ratio), f"{row.finished}/{row.chains}",
                     _stat(row.f1_weighted, plus_minus), _stat(row.f1_macro, plus_minus)]
            cells += [_points(row.gap)] if self.has_baselines else []
            cells += [_status_text(row.statuses, leave_out="finished") or "-"]
            rows.append(cells)
        return columns, rows

    def _search_table(self) -> tuple[list[str], list[list[str]]]:
        columns = ["arm", "r"]
        columns += ["similarity"] if self.has_similarity else []
        columns += ["recovery"] if self.has_recovery else []
        columns += ["agreement", "decided", "search"]
        rows = []
        for row in self.rows:
            if row.kind != "nas":
                continue
            cells = [row.arm, _ratio(row.label_ratio)]
            cells += [_mean(row.similarity, ".2f")] if self.has_similarity else []
            cells += [_mean(row.recovery, ".2f")] if self.has_recovery else []
            cells += [_mean(row.agreement, ".2f"), str(row.decided or "-"), _seconds(row.search_seconds)]
            rows.append(cells)
        return columns, rows

    def _arm_table(self) -> tuple[list[str], list[list[str]]]:
        columns = ["arm", "kind", "chains"]
        columns += ["similarity"] if self.has_similarity else []
        columns += ["recovery"] if self.has_recovery else []
        columns += ["search", "searches", "device", "not finished"]
        rows = []
        for arm in self.arms:
            cells = [arm.arm, arm.kind, str(arm.chains)]
            cells += [_mean(arm.similarity, ".2f")] if self.has_similarity else []
            cells += [_mean(arm.recovery, ".2f")] if self.has_recovery else []
            cells += [_seconds(arm.search_seconds), str(arm.search_seconds.n if arm.search_seconds else 0),
                      ", ".join(arm.devices) or "-", _status_text(arm.statuses, leave_out="finished") or "-"]
            rows.append(cells)
        return columns, rows

    def _paired_table(self) -> tuple[list[str], list[list[str]]]:
        columns = ["r", "pairs", "mean diff", "95% CI", "verdict"]
        rows = [[_ratio(p.label_ratio), str(p.pairs), _points(p.mean),
                 "-" if p.low is None or p.high is None else f"[{p.low:+.1f}, {p.high:+.1f}]", p.verdict]
                for p in self.paired]
        return columns, rows

    def _footer(self, plus_minus: str) -> list[str]:
        runs = sum(self.statuses.values())
        lines = [f"runs: {runs} ({_status_text(self.statuses)}); groups: {', '.join(self.groups)}",
                 f"F1: test split, epoch and threshold chosen on dev; mean {plus_minus} sample std over seeds "
                 "(n: finished / chains)"]
        lines += self._gap_notes()
        if self.has_nas:
            lines += self._architecture_notes()
            lines += ["agreement: diff(a, b).similarity of two seeds' genotypes, mean over pairs (random's: chance "
                      "level)",
                      f"decided: finished searches with every choice's top weight >= {DECIDED_RATIO}x uniform / all "
                      "(mean lowest ratio)"]
        lines.append("search: wall time of a finished search run, mean; a search that several chains share "
                     "counts once")
        if self.search_seconds is not None:
            total = Stat(self.search_seconds.mean * self.search_seconds.n, None, 1)
            lines.append(f"searches: {self.search_seconds.n} finished, {_seconds(total)} of wall time in all")
        lines += self._paired_notes()
        return lines + (self.study.notes() if self.study is not None else [])

    def _gap_notes(self) -> list[str]:
        if not self.has_baselines:
            return ["gap to the no-search baselines: left out, no arm here is one (finetune.model linear, mlp or "
                    "late_fusion)"]
        names = ", ".join(arm.arm for arm in self.arms if arm.kind == "baseline")
        best = ", ".join(f"r={_ratio(b.label_ratio)} {b.arm}" for b in self.best_baselines) or "none finished"
        return ["gap: F1 weighted minus the best no-search baseline's at that r, in points (x 100)",
                f"best baseline (of {names}): {best}"]

    def _architecture_notes(self) -> list[str]:
        lines = []
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
        return lines

    def _paired_notes(self) -> list[str]:
        a, b = self.paired_arms
        if self.paired_missing:
            return [f"{a} - {b} (paired by seed): left out, no {' or '.join(self.paired_missing)} arm here"]
        return [f"{a} - {b}: F1 weighted points on seeds where both finished; 95% CI: Student's t, pairs - 1 df"]


# -- building --------------------------------------------------------------------------------------


def build_report(registry: Registry, group_or_tag: str, baseline: str = BASELINE,
                 paired: tuple[str, str] | None = None) -> Report:
    """The report of a group (its id or a unique prefix) or, when no group matches, of a tag; `paired`: the two
    arms compared seed by seed (default PAIRED)."""
    from ssnas.baselines import load_baseline

    kind, runs = select_runs(registry, group_or_tag)
    reference = load_baseline(baseline)
    by_id = {run.id: run for run in runs}
    finetunes = [run for run in runs if run.stage == "finetune"]
    if not finetunes:
        raise RegistryError(f"{kind} {group_or_tag!r} has no finetune runs to report "
                            f"({len(runs)} run(s): {_status_text(Counter(r.status for r in runs))})")
    built = [_chain(registry, run, by_id, reference) for run in finetunes]
    chains = [chain for chain, _ in built]
    genotypes = {chain.finetune_id: genotype for chain, genotype in built if genotype is not None}
    arms = list(dict.fromkeys(chain.arm for chain in chains))
    rows, best = _with_gaps(_rows(chains, arms, genotypes))
    paired = paired or PAIRED
    return Report(
        selection=group_or_tag, kind=kind,
        groups=tuple(dict.fromkeys(run.group_id for run in runs if run.group_id)),
        datasets=tuple(sorted({run.dataset for run in runs if run.dataset})),
        baseline=baseline,
        baseline_nodes=reference.used_input_names,
        statuses=dict(Counter(run.status for run in runs)),
        rows=tuple(rows),
        arms=tuple(_arm_summary(arm, [c for c in chains if c.arm == arm]) for arm in arms),
        best_baselines=tuple(best),
        paired_arms=paired,
        paired=_paired(chains, paired),
        chains=tuple(chains),
        search_seconds=search_cost(chains),
        study=study_summary(registry, study) if kind == "tag" and (study := study_of_tag(group_or_tag.strip())) \
        else None,
    )


def select_runs(registry: Registry, group_or_tag: str) -> tuple[str, list[Run]]:
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
    groups = list(dict.fromkeys(run.group_id for run in prefixed if run.group_id is not None))  # all have one
    if len(groups) > 1:
        shown = ", ".join(groups[:5]) + (", ..." if len(groups) > 5 else "")
        raise RegistryError(f"{wanted!r} matches {len(groups)} groups: {shown}")
    if groups:
        return "group", prefixed
    runs = registry.runs(tag=wanted, sort="created_at", config=True)
    if runs:
        return "tag", runs
    raise RegistryError(f"no group or tag matches {wanted!r} in {registry.path}")


def _chain(registry: Registry, finetune: Run, by_id: dict[str, Run],
           reference: Genotype) -> tuple[Chain, Genotype | None]:
    """The chain ending in `finetune`, and the genotype it trained (kept apart: agreement compares them)."""
    from ssnas.nas.binding import bind_reference
    from ssnas.nas.genotype import diff

    members = _ancestors(registry, finetune, by_id)  # finetune first
    search = next((run for run in members if run.stage == "search"), None)
    config = finetune.config or {}
    finished = finetune.status == "finished"
    test = test_scores(registry, finetune) if finished else {}
    results = _results(registry, finetune) if finished else {}
    model = (config.get("finetune") or {}).get("model") or results.get("model") or "nas"
    genotype = _genotype(registry, members, search)
    planted = _planted_nodes(config)
    mapping = (config.get("run") or {}).get("genotype_nodes")
    bound = bind_reference(reference, genotype.input_names, mapping) if genotype else None
    seconds, arch = _search_end(registry, search)
    device = (search or finetune).device
    chain = Chain(
        finetune_id=finetune.id, name=finetune.name,
        arm=arm_of(finetune.tags) or finetune.objective or "-",
        kind="nas" if model == "nas" else "baseline", model=model,
        label_ratio=finetune.label_ratio, seed=finetune.seed, status=finetune.status,
        f1_weighted=test.get("f1_weighted"), f1_macro=test.get("f1_macro"),
        mode=results.get("mode"), steps=results.get("steps"),
        search_id=search.id if search else None, search_status=search.status if search else None,
        search_seconds=seconds, arch_top_ratio=arch.get("arch_top_ratio"), arch_entropy=arch.get("arch_entropy"),
        device=device if device and device != "starting" else None,
        genotype=genotype.describe().replace("\n", "; ") if genotype else None,
        similarity=diff(genotype, bound).similarity if genotype and bound else None,
        recovery=planted_recovery(used_input_nodes(genotype), planted) if genotype and planted else None,
        lacks_baseline=genotype is not None and bound is None,
    )
    return chain, genotype


def _ancestors(registry: Registry, run: Run, by_id: dict[str, Run]) -> list[Run]:
    """The run and its parents up to the chain's first stage."""
    chain = [run]
    seen = {run.id}
    while chain[-1].parent_id and chain[-1].parent_id not in seen:
        parent_id = chain[-1].parent_id
        try:
            parent = by_id.get(parent_id) or registry.get_run(parent_id)
        except RegistryError:  # deleted
            break
        chain.append(parent)
        seen.add(parent_id)
    return chain


def _search_end(registry: Registry, search: Run | None) -> tuple[float | None, dict[str, float]]:
    """A finished search's wall time and its last "arch" metrics, which describe its final weights; nothing for
    a search that did not finish (its last values describe weights it never settled on)."""
    if search is None or search.status != "finished":
        return None, {}
    seconds = elapsed_seconds(search)
    arch = last_values(registry.metrics(search.id, split="arch"))
    return seconds, {key: value for key, value in arch.items() if math.isfinite(value)}


def _results(registry: Registry, finetune: Run) -> dict[str, Any]:
    """A finetune run's results.json; {} when absent or unreadable (older runs wrote fewer fields)."""
    try:
        data = json.loads((run_folder(registry.path.parent, finetune) / RESULTS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _genotype(registry: Registry, members: Sequence[Run], search: Run | None) -> Genotype | None:
    """The genotype the chain trained: from the first folder (finetune first) that has one, else the search's log."""
    from ssnas.nas.genotype import Genotype

    for run in members:
        path = run_folder(registry.path.parent, run) / GENOTYPE_FILE
        if path.is_file():
            try:
                return Genotype.load(path)
            except GenotypeError:
                continue
    if search is None:
        return None
    row = registry.latest_genotype(search.id)
    if row is not None:
        try:
            return Genotype.from_json(row["genotype"], where=f"run {search.id}")
        except GenotypeError:
            return None
    return None


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


def _ratio_key(ratio: float | None) -> float:
    return math.inf if ratio is None else ratio


def _rows(chains: Sequence[Chain], arms: Sequence[str], genotypes: Mapping[str, Genotype]) -> list[Row]:
    """One row per (arm, r), in arm order then by r; gaps are filled in by `_with_gaps`."""
    cells: dict[tuple[str, float | None], list[Chain]] = {}
    for chain in chains:
        cells.setdefault((chain.arm, chain.label_ratio), []).append(chain)
    order = sorted(cells, key=lambda key: (arms.index(key[0]), _ratio_key(key[1])))
    rows = []
    for arm, ratio in order:
        members = cells[(arm, ratio)]
        done = [c for c in members if c.f1_weighted is not None]
        kind = _kind_of(members)
        rows.append(Row(
            arm=arm, kind=kind, label_ratio=ratio, chains=len(members), statuses=_statuses(members),
            f1_weighted=Stat.of([c.f1_weighted for c in members if c.f1_weighted is not None]),
            f1_macro=Stat.of([c.f1_macro for c in done if c.f1_macro is not None]),
            gap=None,
            similarity=Stat.of([c.similarity for c in members if c.similarity is not None]),
            recovery=Stat.of([c.recovery for c in members if c.recovery is not None]),
            agreement=genotype_agreement(_seed_genotypes(members, genotypes)) if kind == "nas" else None,
            decided=Decisiveness.of(members),
            search_seconds=search_cost(members),
            devices=_devices(members),
        ))
    return rows


def _with_gaps(rows: Sequence[Row]) -> tuple[list[Row], list[BestBaseline]]:
    """The rows with their gap to the best no-search baseline at their r, and that baseline per r."""
    best: dict[float | None, BestBaseline] = {}
    for row in rows:
        if row.kind != "baseline" or row.f1_weighted is None:
            continue
        held = best.get(row.label_ratio)
        if held is None or row.f1_weighted.mean > held.f1_weighted:
            best[row.label_ratio] = BestBaseline(row.label_ratio, row.arm, row.f1_weighted.mean)
    gapped = [replace(row, gap=_gap(row, best.get(row.label_ratio))) for row in rows]
    return gapped, sorted(best.values(), key=lambda b: _ratio_key(b.label_ratio))


def _gap(row: Row, best: BestBaseline | None) -> float | None:
    if best is None or row.f1_weighted is None:
        return None
    return 100 * (row.f1_weighted.mean - best.f1_weighted)


def _kind_of(chains: Sequence[Chain]) -> str:
    return "baseline" if chains and all(c.kind == "baseline" for c in chains) else "nas"


def _seed_genotypes(chains: Sequence[Chain], genotypes: Mapping[str, Genotype]) -> list[Genotype]:
    """One genotype per seed, a finished chain's first: agreement is across seeds, not across reruns of one."""
    by_seed: dict[int | None, Genotype] = {}
    for chain in sorted(chains, key=lambda c: c.status != "finished"):
        genotype = genotypes.get(chain.finetune_id)
        if genotype is not None:
            by_seed.setdefault(chain.seed, genotype)
    return list(by_seed.values())


def genotype_agreement(genotypes: Sequence[Genotype]) -> Stat | None:
    """Mean `diff(a, b).similarity` over every pair (n: pairs); None below two. A search whose seeds agree found
    something in the data; one whose seeds disagree as much as random genotypes do may have found noise."""
    from ssnas.nas.genotype import diff

    if len(genotypes) < 2:
        return None
    return Stat.of([diff(a, b).similarity for a, b in itertools.combinations(genotypes, 2)])


def _arm_summary(arm: str, chains: Sequence[Chain]) -> ArmSummary:
    return ArmSummary(
        arm=arm, kind=_kind_of(chains), chains=len(chains), statuses=_statuses(chains),
        similarity=Stat.of([c.similarity for c in chains if c.similarity is not None]),
        recovery=Stat.of([c.recovery for c in chains if c.recovery is not None]),
        decided=Decisiveness.of(chains),
        search_seconds=search_cost(chains),
        devices=_devices(chains),
    )


def search_cost(chains: Iterable[Chain]) -> Stat | None:
    """Wall time of the chains' distinct finished searches (n: searches): a search that several chains share
    (ssnas.stage_key) counts once, not once per chain."""
    searches = {c.search_id: c.search_seconds for c in chains if c.search_seconds is not None}
    return Stat.of(list(searches.values()))


def _statuses(chains: Sequence[Chain]) -> dict[str, int]:
    """Finetune statuses, finished first; a finished run that logged no test F1 counts as 'no F1'."""
    counts = Counter("no F1" if c.status == "finished" and c.f1_weighted is None else c.status for c in chains)
    return dict(sorted(counts.items(), key=lambda item: (item[0] != "finished", item[0])))


def _devices(chains: Sequence[Chain]) -> tuple[str, ...]:
    return tuple(sorted({c.device for c in chains if c.device}))


# -- search vs random genotypes, paired by seed ------------------------------------------------------


def _paired(chains: Sequence[Chain], arms: tuple[str, str]) -> tuple[PairedDifference, ...]:
    """a - b per r (every r either arm has a chain at); empty when either arm is missing."""
    a, b = arms
    present = {c.arm for c in chains}
    if a not in present or b not in present:
        return ()
    ratios = sorted({c.label_ratio for c in chains if c.arm in arms}, key=_ratio_key)
    return tuple(paired_difference(r, _f1_by_seed(chains, a, r), _f1_by_seed(chains, b, r)) for r in ratios)


def _f1_by_seed(chains: Sequence[Chain], arm: str, ratio: float | None) -> dict[int, float]:
    """Finished chains' test F1 weighted by seed; of two chains with one seed (a rerun), the later."""
    return {c.seed: c.f1_weighted for c in chains
            if c.arm == arm and c.label_ratio == ratio and c.seed is not None and c.f1_weighted is not None}


def paired_difference(label_ratio: float | None, a: Mapping[int, float], b: Mapping[int, float]) -> PairedDifference:
    """a - b (test F1 by seed) over the seeds both have, in points, with its 95 % interval and verdict."""
    seeds = tuple(sorted(set(a) & set(b)))
    differences = [100 * (a[seed] - b[seed]) for seed in seeds]
    low, high = paired_interval(differences) or (None, None)
    return PairedDifference(label_ratio=label_ratio, seeds=seeds, pairs=len(seeds),
                            mean=statistics.fmean(differences) if differences else None, low=low, high=high,
                            verdict=_verdict(low, high))


def paired_interval(differences: Sequence[float]) -> tuple[float, float] | None:
    """The 95 % confidence interval of the mean of paired differences (Student's t, n - 1 df); None below two."""
    n = len(differences)
    if n < 2:
        return None
    mean = statistics.fmean(differences)
    half = t_quantile_975(n - 1) * statistics.stdev(differences) / math.sqrt(n)
    return mean - half, mean + half


def t_quantile_975(df: int) -> float:
    """Student's t 0.975 quantile: the table T_975 up to 30 degrees of freedom, the normal's above."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, not {df}")
    return T_975[df - 1] if df <= len(T_975) else Z_975


def _verdict(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "too few pairs"
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "no difference shown"


# -- formatting ------------------------------------------------------------------------------------


def _ratio(ratio: float | None) -> str:
    return "-" if ratio is None else str(ratio)


def _points(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


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
    rows = [[printable(cell) for cell in row] for row in rows]  # an arm is a tag: anything a user typed
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def _markdown(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(printable(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(columns), "|" + "|".join(" --- " for _ in columns) + "|", *(line(row) for row in rows)])
