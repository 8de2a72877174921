"""Small apps for the dashboard's tests and snapshots, fed with fixed data.

The architecture weights come from `ArchWeights.records()` of a 2-cell, 1-step space over the six
MM-IMDB input nodes, turned into registry-shaped rows, so the widgets see what a search logs.

`fill_registry` writes a whole registry of fixed runs (ids, times, metrics, weights, genotypes, a
log.txt) through the Registry API, and `dashboard` opens `SsnasApp` on it with a frozen clock, so the
main screens can be snapshot: nothing on them depends on when or where the test runs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from textual.app import App, ComposeResult
from textual.containers import Vertical

from ssnas.nas.derive import ArchWeights, derive
from ssnas.nas.genotype import Genotype
from ssnas.registry import Registry, this_host
from tui.app import SsnasApp
from tui.widgets.genotype_view import GenotypeGraph
from tui.widgets.heatmap import ArchHeatmap

NAMES = ("image[0]", "image[1]", "image[2]", "image[3]", "text[0]", "text[1]")
PRIMS = ("zero", "sum", "attention", "linear_glu", "concat_fc")
EPOCHS = 4
STEPS_PER_EPOCH = 16


def peaked(n: int, i: int, high: float) -> list[float]:
    """A distribution over n candidates with `high` on candidate i, the rest shared evenly."""
    low = (1 - high) / (n - 1)
    return [high if k == i else low for k in range(n)]


def arch_weights(epoch: int) -> ArchWeights:
    """Weights that sharpen with the epoch towards BM-NAS's MM-IMDB genotype. Cell 0's op
    distribution puts most weight on `zero` from epoch 1 on, which derivation (and the heatmap's
    marker) must skip in favour of concat_fc."""
    high = 0.2 + 0.15 * epoch
    op0 = [0.2] * 5 if epoch == 0 else [0.42, 0.08, 0.11, 0.13, 0.26]
    return ArchWeights(
        input_names=NAMES,
        primitives=PRIMS,
        cell_input=[[peaked(6, 2, high), peaked(6, 4, high)], [peaked(7, 4, high), peaked(7, 6, high)]],
        step_input=[[[peaked(2, 1, 0.55 + 0.1 * epoch), peaked(2, 0, 0.55)]],
                    [[peaked(2, 0, 0.6), peaked(2, 1, 0.6)]]],
        step_op=[[op0], [peaked(5, 3, high)]],
        cell_multiplier=2,
    )


def arch_rows(epoch: int) -> list[dict]:
    """Registry arch_weights rows of one epoch (keys as `Registry.arch_weights` returns them)."""
    return [
        {"run_id": "run1", "step": STEPS_PER_EPOCH * (epoch + 1), "epoch": epoch, "kind": r.kind, "cell": r.cell,
         "step_index": r.step, "slot": r.slot, "choice": r.choice, "weight": r.weight}
        for r in arch_weights(epoch).records()
    ]


def arch_by_epoch(epochs: int = EPOCHS) -> dict[int, list[dict]]:
    return {epoch: arch_rows(epoch) for epoch in range(epochs)}


def final_genotype() -> Genotype:
    return derive(arch_weights(EPOCHS - 1))


class ArchApp(App):
    """The heatmap over the genotype it derives, as a run screen would show them."""

    CSS = """
    Screen { layout: vertical; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield ArchHeatmap()
            yield GenotypeGraph()

    def on_mount(self) -> None:
        self.query_one(ArchHeatmap).set_weights(arch_by_epoch())
        self.query_one(GenotypeGraph).set_genotype(final_genotype())


# -- a whole registry of fixed runs, for the dashboard's screens ---------------------------------

CLOCK = 1_750_000_000.0  # the dashboard's "now": 2025-06-15 15:06:40 UTC
SEARCH_ID = "a3f9c2e1b7d0"  # the finished search run the run-view snapshots open
RUNNING_ID = "c5d07e9f1a24"
SEARCH_EPOCHS = 4
SEARCH_STEPS = 64  # training steps of the search run's loss/train series


def searched_weights(epoch: int) -> ArchWeights:
    """Weights that settle, epoch by epoch, on a genotype other than BM-NAS's (so the diff has rows):
    cell 0 reads image[3] and text[0] through attention, cell 1 reads text[1] and cell 0 through
    linear_glu."""
    high = 0.25 + 0.15 * epoch
    return ArchWeights(
        input_names=NAMES,
        primitives=PRIMS,
        cell_input=[[peaked(6, 3, high), peaked(6, 4, high)], [peaked(7, 5, high), peaked(7, 6, high + 0.05)]],
        step_input=[[[peaked(2, 1, 0.55 + 0.1 * epoch), peaked(2, 0, 0.6)]],
                    [[peaked(2, 0, 0.6), peaked(2, 1, 0.5 + 0.1 * epoch)]]],
        step_op=[[peaked(5, 2, high)], [peaked(5, 3, 0.2 + 0.12 * epoch)]],
        cell_multiplier=2,
    )


def searched_genotype() -> Genotype:
    return derive(searched_weights(SEARCH_EPOCHS - 1))


def loss_curve(steps: int, start: float, floor: float, wiggle: float) -> list[float]:
    """A training loss that falls and wiggles, the same on every machine."""
    return [floor + (start - floor) * math.exp(-i / (steps / 4)) + wiggle * math.sin(i * 1.7) for i in range(steps)]


# id, name, stage, status, group, parent, objective, label ratio, progress, minutes since start (or None),
# minutes run (None while running), the error
RUNS: tuple[tuple, ...] = (
    (SEARCH_ID, "mmimdb-ssl", "search", "finished", "p-7e21", None, "ssl", 0.1, 1.0, 300, 42, None),
    ("b81e4d2a09c3", "mmimdb-ssl/pretrain", "pretrain", "finished", "p-7e21", SEARCH_ID, "ssl", 0.1, 1.0, 255,
     61, None),
    (RUNNING_ID, "mmimdb-ssl/finetune", "finetune", "running", "p-7e21", "b81e4d2a09c3", "ssl", 0.1, 0.42,
     83, None, None),
    ("d2c41a0e7b11", "sweep-r[label_ratio=0.01]", "search", "finished", "sw-4410", None, "ssl", 0.01, 1.0, 200, 38,
     None),
    ("d7e02b9c4a22", "sweep-r[label_ratio=0.1]", "search", "failed", "sw-4410", None, "ssl", 0.1, 0.63, 200, 27,
     "CUDA out of memory. Tried to allocate 2.00 GiB"),
    ("da18f3c6e533", "sweep-r[label_ratio=1]", "search", "queued", "sw-4410", None, "ssl", 1.0, None, None, None, None),
    ("e7a1b3c5d9f2", "random-baseline", "search", "lost", None, None, "random", 0.1, 0.18, 150, 12,
     "worker process gone"),
    ("f0e9d8c7b6a5", "supervised-r10", "search", "killed", None, None, "supervised", 0.1, 0.75, 120, 33,
     "killed by the user"),
)

RAY_NODES = {"d2c41a0e7b11": "gpu-node-1", "d7e02b9c4a22": "gpu-node-2"}  # the sweep ran on a Ray cluster

LOG_LINES = (
    "2025-06-15 10:06:40 info     run a3f9c2e1b7d0 (mmimdb-ssl, search) on cuda:0",
    "2025-06-15 10:06:41 info     data: synthetic mmimdb-like, 1,536 train / 512 dev, label ratio 0.1",
    "2025-06-15 10:17:12 info     epoch 0: loss 1.214, arch loss 1.302, dev F1 0.412",
    "2025-06-15 10:27:40 warning  arch step skipped: gradient norm 1.8e+03 is not finite after clipping",
    "2025-06-15 10:27:44 info     epoch 1: loss 0.871, arch loss 0.944, dev F1 0.503",
    "2025-06-15 10:38:05 info     epoch 2: loss 0.642, arch loss 0.713, dev F1 0.561",
    "2025-06-15 10:48:36 info     epoch 3: loss 0.520, arch loss 0.601, dev F1 0.588",
    "2025-06-15 10:48:37 info     genotype: cell0 = attention(image[3], text[0]); cell1 = linear_glu(text[1], cell0)",
    "2025-06-15 10:48:40 info     finished in 42m00s",
)


def _search_rows(run_id: str) -> tuple[list[tuple], list[tuple]]:
    """The search run's metric rows and arch-weight rows."""
    per_epoch = SEARCH_STEPS // SEARCH_EPOCHS
    metrics = [(run_id, step, step // per_epoch, "train", "loss", value, 0.0)
               for step, value in enumerate(loss_curve(SEARCH_STEPS, 1.6, 0.45, 0.04))]
    arch = []
    for epoch in range(SEARCH_EPOCHS):
        step = per_epoch * (epoch + 1)
        metrics += [(run_id, step, epoch, "train", "epoch_loss", 1.2 * 0.78 ** epoch, 0.0),
                    (run_id, step, epoch, "arch", "epoch_loss", 1.3 * 0.8 ** epoch, 0.0),
                    (run_id, step, epoch, "dev", "f1_weighted", 0.62 - 0.21 * 0.6 ** epoch, 0.0)]
        arch += [(run_id, step, epoch, r.kind, r.cell, r.step, r.slot, r.choice, r.weight)
                 for r in searched_weights(epoch).records()]
    return metrics, arch


def _other_metrics(run_id: str, progress: float | None, k: int) -> list[tuple]:
    """A short loss series (as far as the run got) and a dev F1 per epoch, different per run."""
    if not progress:
        return []
    steps = max(2, int(40 * progress))
    rows = [(run_id, step, step // 10, "train", "loss", value, 0.0)
            for step, value in enumerate(loss_curve(steps, 1.5 + 0.1 * k, 0.5 + 0.03 * k, 0.02))]
    rows += [(run_id, 10 * (e + 1), e, "dev", "f1_weighted", 0.33 + 0.03 * k + 0.04 * e, 0.0)
             for e in range(steps // 10)]
    return rows


def fill_registry(runs_dir: Path) -> Path:
    """A registry of the eight `RUNS` with fixed ids and times, and the search run's folder with its
    log.txt; returns the registry's path. The running run names this process, on this host, so no
    reader reconciles it to lost however stale its heartbeat."""
    runs_dir = Path(runs_dir)
    path = runs_dir / "registry.db"
    with Registry(path) as registry:
        for k, (run_id, name, stage, status, group, parent, objective, ratio, progress, since, took,
                error) in enumerate(RUNS):
            config = {"run": {"name": name, "stage": stage, "seed": k % 3},
                      "data": {"dataset": "mmimdb", "label_ratio": ratio},
                      "search": {"objective": objective, "epochs": SEARCH_EPOCHS}}
            registry.create_run(run_id=run_id, name=name, stage=stage, config=config, objective=objective,
                                dataset="mmimdb", label_ratio=ratio, seed=k % 3, group_id=group, parent_id=parent,
                                tags=["paper"] if k < 3 else [], recipe_path="recipes/pipeline.toml")
            fields: dict = {"status": status, "created_at": CLOCK - 3600 * 6 + 60 * k, "progress": progress,
                            "error": error}
            if since is not None:
                started = CLOCK - 60 * since
                fields.update(started_at=started, heartbeat_at=started + 60 * (took or since),
                              device="cuda:0", host=this_host(), pid=os.getpid() if status == "running" else None,
                              node=RAY_NODES.get(run_id, "workstation"),
                              executor="ray" if run_id in RAY_NODES else "local")
                if took is not None:
                    fields["ended_at"] = started + 60 * took
            registry.update_run(run_id, **fields)
            if run_id == SEARCH_ID:
                metrics, arch = _search_rows(run_id)
                registry.add_metrics(metrics)
                registry.add_arch_weights(arch)
                for epoch in range(SEARCH_EPOCHS):
                    genotype = derive(searched_weights(epoch))
                    registry.add_genotype(run_id, SEARCH_STEPS // SEARCH_EPOCHS * (epoch + 1), epoch,
                                          genotype.to_json())
            else:
                registry.add_metrics(_other_metrics(run_id, progress, k))
    folder = runs_dir / SEARCH_ID
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "log.txt").write_text("\n".join(LOG_LINES) + "\n")
    return path


def dashboard(runs_dir: Path) -> SsnasApp:
    """The dashboard over `runs_dir` with a frozen clock and a poll interval longer than any test, so a
    snapshot shows exactly what the first poll read."""
    return SsnasApp(Path(runs_dir), poll_interval=3600.0, clock=lambda: CLOCK)
