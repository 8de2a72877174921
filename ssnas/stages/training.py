"""What the stages share besides their loop (`loop.py`): batches by index, budgets, the contrastive
loss on views, optimizers and schedules."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ssnas.config.views import ViewConfig
from ssnas.data.pyramids import FeatureSet, input_nodes
from ssnas.data.views import make_views
from ssnas.errors import SsnasError
from ssnas.nas.batching import fuse_batches
from ssnas.objectives import SSLLoss, nt_xent

if TYPE_CHECKING:
    from ssnas.nas.fixed import FixedNet
    from ssnas.nas.supernet import Supernet


class NonFiniteLoss(SsnasError):
    """Training diverged: the loss became NaN or infinite."""


class StageStopped(SsnasError):
    """The stage stopped on request (e.g. SIGTERM): after saving a checkpoint it can resume from, or before its
    first step, with nothing to save."""


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of one epoch's batch order: a function of (seed, epoch) alone, so that a run
    resumed in the middle of an epoch draws the same batches as one that never stopped."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def step_seed(seed: int, step: int, role: int = 0) -> int:
    """Seed of the random views of one step (and one role in it), likewise stateless."""
    return ((seed * 1_000_003 + step) * 8 + role) % (2**63)


class NodeData:
    """A dataset's input nodes (pooled once) held as contiguous tensors: on the training device
    when they fit in half of its free memory, else in host memory, each batch gathered there and
    copied over."""

    def __init__(self, features: FeatureSet, positions: int, device: torch.device,
                 device_budget: int | None = None) -> None:
        levels = input_nodes(features, positions)
        size = sum(level.numel() * level.element_size() for level in levels)
        if device_budget is None:
            device_budget = torch.cuda.mem_get_info(device)[0] // 2 if device.type == "cuda" else size
        self.resident = size <= device_budget
        if self.resident:
            self.levels = [level.to(device) for level in levels]
        else:
            self.levels = levels
        self.in_channels = [level.shape[-1] for level in self.levels]
        self.node_names = features.node_names
        self.node_modality = features.node_modality
        self.device = device

    def batch(self, index: torch.Tensor) -> list[torch.Tensor]:
        if self.resident:
            index = index.to(self.device)
            return [level.index_select(0, index) for level in self.levels]
        index = index.cpu()
        return [level.index_select(0, index).to(self.device) for level in self.levels]


def batch_indices(
    indices: torch.Tensor, batch_size: int, generator: torch.Generator | None, drop_last: bool = True
) -> list[torch.Tensor]:
    """Shuffled (when a generator is given) batches of row indices; one per step.

    With `drop_last`, a short last batch is dropped only when it is a small share of the rows
    (`keeps_remainder`): on a labeled set of 120 rows and batches of 64, dropping it would waste
    47 % of the labels, which tiny labeled sets cannot afford.
    """
    order = indices[torch.randperm(indices.numel(), generator=generator)] if generator is not None else indices
    size = min(batch_size, order.numel())
    remainder = order.numel() % size
    stop = order.numel() - (remainder if drop_last and not keeps_remainder(order.numel(), size) else 0)
    return [order[start : start + size] for start in range(0, stop, size)]


def keeps_remainder(count: int, size: int) -> bool:
    """Whether a training epoch keeps its short last batch: when it has at least two rows (batch
    norm and the contrastive loss need two) and dropping it would lose 10 % of the rows or more."""
    remainder = count % size
    return remainder >= 2 and remainder >= 0.1 * count


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Batches per pass over `count` rows, as `batch_indices` makes them."""
    size = min(batch_size, count)
    return max(1, count // size + int(keeps_remainder(count, size)))


@dataclass(frozen=True)
class Budget:
    """A stage's optimizer steps: `epochs` rounds (each ends with the dev check, logging and a
    checkpoint), each of `passes` passes over the rows. Passes grow so that the stage takes at
    least `min_steps` steps: the budget then no longer shrinks with the labeled set, while the
    number of dev checks and checkpoints stays what the recipe asked for."""

    epochs: int
    passes: int
    per_pass: int  # optimizer steps per pass over the rows
    rows: int
    batch_size: int

    @property
    def per_epoch(self) -> int:
        return self.passes * self.per_pass

    @property
    def total(self) -> int:
        return self.epochs * self.per_epoch

    def describe(self, stage: str) -> str:
        """The line each run's log carries, so that a starved stage is visible."""
        size = min(self.batch_size, self.rows)
        return (f"{stage}: {self.total} optimizer steps ({self.epochs} epochs x {self.passes} pass(es) x "
                f"{self.per_pass} batch(es) of up to {size} rows, from {self.rows} rows)")


def plan_budget(rows: int, batch_size: int, epochs: int, min_steps: int) -> Budget:
    """The budget of a stage that trains on `rows` rows: `epochs` epochs, at least `min_steps` steps."""
    per_pass = steps_per_epoch(rows, batch_size)
    passes = max(1, math.ceil(min_steps / (per_pass * epochs)))
    return Budget(epochs=epochs, passes=passes, per_pass=per_pass, rows=rows, batch_size=batch_size)


def epoch_batches(
    rows: Sequence[torch.Tensor], budget: Budget, seed: int, epoch: int
) -> list[tuple[torch.Tensor, ...]]:
    """The steps of one epoch: `budget.passes` shuffled passes, each zipping a batch of every
    row set (the search draws its network batch and its architecture batch together). A
    function of (seed, epoch) alone, so that a resumed run draws what an unbroken one did."""
    generator = epoch_generator(seed, epoch)
    steps: list[tuple[torch.Tensor, ...]] = []
    for _ in range(budget.passes):
        batches = [batch_indices(r, budget.batch_size, generator) for r in rows]
        steps += list(zip(*batches, strict=False))[: budget.per_pass]  # row sets differ in size: the fewest batches
    return steps


def contrastive_loss(
    network: FixedNet | Supernet,
    projector: nn.Module,
    levels: list[torch.Tensor],
    node_modality: tuple[int, ...],
    views: ViewConfig,
    temperature: float,
    generator: torch.Generator | None,
    stacked: bool = True,
    loss: SSLLoss = nt_xent,
) -> torch.Tensor:
    """`loss` (NT-Xent, or a plugin's) between two feature-level views of each sample's fused representation.

    The views are made after the input projections, so the stem runs once per sample rather
    than once per view; `stacked` fuses both views in one pass (see `nas.batching`).
    """
    nodes = network.embed(levels)
    fused_a, fused_b = fuse_batches(network, make_views(nodes, node_modality, views, generator), stacked)
    return loss(projector(fused_a), projector(fused_b), temperature)


def adam(params: list[nn.Parameter], *, lr: float, weight_decay: float,
         betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    """Adam with its fused kernel: one pass over the weights instead of a dozen (CPU and CUDA)."""
    return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=True)


def cosine_lr(optimizer: torch.optim.Optimizer, base: float, minimum: float, progress: float) -> None:
    """Set the learning rate of a cosine schedule at `progress` in [0, 1]."""
    lr = minimum + 0.5 * (base - minimum) * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    for group in optimizer.param_groups:
        group["lr"] = lr


def descend(loss: torch.Tensor, optimizer: torch.optim.Optimizer, params: list[nn.Parameter], grad_clip: float) -> None:
    """One clipped gradient step on `params`."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()

