"""What the three stages share: batches by index, the contrastive loss on views, schedules."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn

from ssnas.data.pyramids import FeatureSet, input_nodes
from ssnas.data.views import ViewConfig, make_views
from ssnas.errors import SsnasError
from ssnas.objectives import nt_xent
from ssnas.reporting import Reporter


class NonFiniteLoss(SsnasError):
    """Training diverged: the loss became NaN or infinite."""


class NodeData:
    """A dataset's input nodes (pooled once) held as contiguous tensors on the training device."""

    def __init__(self, features: FeatureSet, positions: int, device: torch.device) -> None:
        self.levels = [level.to(device) for level in input_nodes(features, positions)]
        self.in_channels = [level.shape[-1] for level in self.levels]
        self.node_names = features.node_names
        self.node_modality = features.node_modality
        self.device = device

    def batch(self, index: torch.Tensor) -> list[torch.Tensor]:
        index = index.to(self.device)
        return [level.index_select(0, index) for level in self.levels]


def batch_indices(
    indices: torch.Tensor, batch_size: int, generator: torch.Generator | None, drop_last: bool = True
) -> Iterator[torch.Tensor]:
    """Shuffled (when a generator is given) batches of row indices; one per step."""
    order = indices[torch.randperm(indices.numel(), generator=generator)] if generator is not None else indices
    size = min(batch_size, order.numel())
    stop = order.numel() - (order.numel() % size if drop_last else 0)
    for start in range(0, stop, size):
        yield order[start : start + size]


def steps_per_epoch(count: int, batch_size: int) -> int:
    return max(1, count // min(batch_size, count))


def contrastive_loss(
    network: nn.Module,
    projector: nn.Module,
    levels: list[torch.Tensor],
    node_modality: tuple[int, ...],
    views: ViewConfig,
    temperature: float,
    generator: torch.Generator | None,
    frozen_stem: bool = False,
) -> torch.Tensor:
    """NT-Xent between two feature-level views of each sample's fused representation.

    The views are made after the input projections, so the stem runs once per sample rather
    than once per view. `frozen_stem` computes the stem without a graph, for an architecture
    step that needs no gradient there.
    """
    if frozen_stem:
        with torch.no_grad():
            nodes = network.embed(levels)
    else:
        nodes = network.embed(levels)
    view_a, view_b = make_views(nodes, node_modality, views, generator)
    return nt_xent(projector(network.fuse(view_a)), projector(network.fuse(view_b)), temperature)


def adam(params: list[nn.Parameter], **options: object) -> torch.optim.Adam:
    """Adam with its fused kernel: one pass over the weights instead of a dozen (CPU and CUDA)."""
    return torch.optim.Adam(params, fused=True, **options)


def cosine_lr(optimizer: torch.optim.Optimizer, base: float, minimum: float, progress: float) -> None:
    """Set the learning rate of a cosine schedule at `progress` in [0, 1]."""
    lr = minimum + 0.5 * (base - minimum) * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    for group in optimizer.param_groups:
        group["lr"] = lr


def check_finite(loss: torch.Tensor, stage: str, epoch: int) -> float:
    value = float(loss.detach())
    if not math.isfinite(value):
        raise NonFiniteLoss(f"{stage}: loss became {value} in epoch {epoch}; lower the learning rate")
    return value


def descend(loss: torch.Tensor, optimizer: torch.optim.Optimizer, params: list[nn.Parameter], grad_clip: float) -> None:
    """One clipped gradient step on `params`."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()


def record_step(reporter: Reporter, stage: str, loss: torch.Tensor, step: int, total: int, epoch: int) -> float:
    """Check the step's loss, log it and move the progress line; returns it as a float."""
    value = check_finite(loss, stage, epoch)
    reporter.metric("loss", value, step=step, epoch=epoch, split="train")
    reporter.progress(stage, step, total, value)
    return value
