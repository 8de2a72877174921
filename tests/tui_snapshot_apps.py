"""Small apps for the dashboard widgets' tests and snapshots, fed with fixed data (no registry).

The architecture weights come from `ArchWeights.records()` of a 2-cell, 1-step space over the six
MM-IMDB input nodes, turned into registry-shaped rows, so the widgets see what a search logs.
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.containers import Vertical

from ssnas.nas.derive import ArchWeights, derive
from ssnas.nas.genotype import Genotype
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
